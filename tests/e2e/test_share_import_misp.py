"""``healthsec share import-misp``: a PyMISP-built event lands as STIX; a broken one is quarantined."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pymisp import MISPEvent
from typer.testing import CliRunner

from healthsec.cli import app
from healthsec.store import Store
from healthsec.store.sharing import Sharing

T = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["share", "import-misp", *args])
    return result.exit_code, " ".join(result.output.split())


def test_event_imported_then_deduplicated(tmp_path: Path) -> None:
    ev = MISPEvent()  # as a MISP instance exports it: uuids and timestamps set
    ev.info = "Ransomware C2 seen by partner"
    ev.uuid = "5a0b3c1e-0000-4000-8000-000000000001"
    ev.date = T.date()
    ev.add_attribute(
        "ip-dst", "198.51.100.23", to_ids=True, timestamp=T, uuid="5a0b3c1e-0000-4000-8000-000000000002"
    )
    ev.add_attribute(
        "domain", "c2.example.net", to_ids=True, timestamp=T, uuid="5a0b3c1e-0000-4000-8000-000000000003"
    )
    ev.add_tag("tlp:green")
    f = tmp_path / "partner-event.json"
    event = json.loads(ev.to_json())
    event["timestamp"] = str(int(T.timestamp()))  # PyMISP leaves it to the server; MISP exports carry it
    f.write_text(json.dumps({"Event": event}))
    db = str(tmp_path / "hs.db")
    code, text = _run(str(f), "--db", db)
    assert code == 0, text
    assert "MISP event (TLP:GREEN)" in text
    assert "2 indicator" in text
    code, text = _run(str(f), "--db", db)
    assert code == 0, text
    assert "-> 0 new STIX object versions" in text
    store = Store.open(db)
    sh = Sharing.of(store)
    inbox = sh.collections.get("inbox")
    assert inbox is not None
    bodies = "".join(o.body for o in sh.objects.page(inbox["id"], limit=100).items)
    assert "198.51.100.23" in bodies
    assert {o.source for o in sh.objects.page(inbox["id"], limit=100).items} == {"partner-event.json"}
    store.close()


def test_broken_event_is_quarantined_with_reason(tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text('{"Event": {"info": "x", "Attribute": [{"value": "1.2.3.4"}]}}')
    db = str(tmp_path / "hs.db")
    code, text = _run(str(f), "--db", db)
    assert code == 1
    assert "bad.json: Event.Attribute[0] has no type/value" in text
    store = Store.open(db)
    sh = Sharing.of(store)
    rows = sh.quarantine.list()
    assert len(rows) == 1
    assert "no type/value" in str(rows[0])
    inbox = sh.collections.get("inbox")
    assert inbox is None or sh.objects.count(inbox["id"]) == 0
    store.close()
