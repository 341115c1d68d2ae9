"""A foreground listener shows each alert the engine (or a worker) stores once, in the order it was stored."""

from __future__ import annotations

import dataclasses
import os
import uuid
from pathlib import Path

import pytest
from usecase_helpers import alert

from healthsec.commands.live_ingest import LiveIngest
from healthsec.store import Store

PG_URL = os.environ.get("HEALTHSEC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_late_alert_with_an_earlier_time_is_shown_exactly_once(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = f"t-{uuid.uuid4().hex[:12]}"
    url = str(tmp_path / "live.db") if backend == "sqlite" else PG_URL
    monkeypatch.setenv("HEALTHSEC_ORG", org)
    writer = Store.open(url, org)  # the engine or a worker, storing while the listener watches
    writer.alerts.add_many([alert("before", "ws-1", 1)])  # stored before the listener started: not shown
    ingest = LiveIngest(url)
    try:
        assert ingest.new_alerts() == []
        writer.alerts.add_many([alert("a-late-minute", "ws-1", 30)])
        assert [a.id for a in ingest.new_alerts()] == ["a-late-minute"]
        # stored later, but about an earlier minute than the alert already shown
        writer.alerts.add_many([alert("b-early-minute", "ws-2", 5)])
        assert [a.id for a in ingest.new_alerts()] == ["b-early-minute"]
        assert ingest.new_alerts() == []
        # the same alert stored again (grown evidence) is not new
        grown = dataclasses.replace(alert("a-late-minute", "ws-1", 30), evidence=("e1", "e2"))
        writer.alerts.add_many([grown])
        assert ingest.new_alerts() == []
        writer.alerts.add_many([alert(f"n{i}", "ws-3", i % 50) for i in range(7)])
        shown = [a.id for a in ingest.new_alerts(page=3)]  # several keyset pages in one call
        assert sorted(shown) == sorted(f"n{i}" for i in range(7)) and len(shown) == 7
    finally:
        ingest.close()
        writer.close()
