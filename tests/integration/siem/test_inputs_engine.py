"""A recorded Suricata file through the one engine into the store, and on through the outbox to a SIEM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from healthsec.config import Settings
from healthsec.ingest.siem import EveSource
from healthsec.respond import siem
from healthsec.services import outputs
from healthsec.services.ingest_files import run_file
from healthsec.services.notify import dispatch
from healthsec.store import Store

pytestmark = pytest.mark.integration


def test_eve_file_through_engine_to_elastic(shared_data: Path, tmp_path: Path, http_receiver: Any) -> None:
    store = Store.open(str(tmp_path / "e.db"), "north")
    settings = Settings(
        detectors=("external-alerts",),
        outputs=[
            {
                "name": "es",
                "transport": "elastic",
                "format": "ocsf",
                "url": http_receiver.url,
                "findings": ["alert"],
            }
        ],
    )
    run = run_file(
        store, settings, EveSource(shared_data / "suricata-eve-samples/nmap-scan-2025/eve.json.gz")
    )
    assert run.events == 611 and not run.errors  # 691 records less 80 stats
    assert run.alerts == 54 and run.by_detector == {"external-alerts": 54}
    assert store.alerts.count() == 54
    assert store.events.count("flow") == 274
    counts = dispatch(store, outputs.senders(settings), limit=1000)
    assert counts == {"sent": 54, "retry": 0, "dead": 0}
    assert len(http_receiver.bulk) == 54
    for _, doc in http_receiver.bulk:
        siem.validate_ocsf(doc)
    titles = {d["finding_info"]["title"] for _, d in http_receiver.bulk}
    assert "Suricata: ET SCAN Potential SSH Scan" in titles
    ssh = next(d for _, d in http_receiver.bulk if d["finding_info"]["title"].endswith("SSH Scan"))
    assert ssh["finding_info"]["attacks"][0]["technique"]["uid"] == "T1110"
