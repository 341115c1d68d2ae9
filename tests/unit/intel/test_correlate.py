"""Partner reports raise open local incidents that share their ATT&CK techniques: the pure function,
and the hook in the STIX import path."""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

from healthsec.analyze.intel_correlate import raise_priority, report_techniques
from healthsec.model import IncidentStatus, Severity
from healthsec.services.intel import raise_incidents_for_reports
from healthsec.share.stix_import import import_bundle
from healthsec.share.stix_sample import sample_alerts, sample_incident
from healthsec.store import Store
from healthsec.store.sharing import Sharing

TS = "2026-01-01T00:00:00.000Z"


def _bundle(*techniques: str) -> bytes:
    ap = [
        {
            "type": "attack-pattern",
            "spec_version": "2.1",
            "id": f"attack-pattern--{uuid.uuid4()}",
            "created": TS,
            "modified": TS,
            "name": t,
            "external_references": [{"source_name": "mitre-attack", "external_id": t}],
        }
        for t in techniques
    ]
    report = {
        "type": "report",
        "spec_version": "2.1",
        "id": f"report--{uuid.uuid4()}",
        "created": TS,
        "modified": TS,
        "name": "Partner report",
        "published": TS,
        "object_refs": [a["id"] for a in ap],
    }
    return json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": [*ap, report]}).encode()


def test_report_techniques_from_attack_patterns_labels_and_tags() -> None:
    ap = {
        "id": "attack-pattern--1",
        "type": "attack-pattern",
        "external_references": [{"source_name": "mitre-attack", "external_id": "T1190"}],
    }
    report = {
        "id": "report--1",
        "object_refs": ["attack-pattern--1"],
        "labels": ["t1046", "ransomware"],
        "x_healthsec_techniques": ["T1059.003"],
    }
    assert report_techniques(report, {"attack-pattern--1": ap}) == {"T1190", "T1046", "T1059.003"}


def test_raise_priority_is_pure_and_only_for_open_incidents_sharing_a_technique() -> None:
    alerts = sample_alerts(2)
    inc = sample_incident(alerts)  # HIGH, 0.9, T1046 + T1190
    closed = dataclasses.replace(inc, id="closed", status=IncidentStatus.CLOSED)
    other = dataclasses.replace(inc, id="other", techniques=("T1486",))
    raised = raise_priority([inc, closed, other], {"report--a": {"T1190.001"}, "report--b": {"T1003"}})
    assert [r.incident.id for r in raised] == [inc.id]  # sub-technique counts by its parent
    r = raised[0]
    assert (r.before, r.incident.severity, r.incident.score) == (Severity.HIGH, Severity.CRITICAL, 1.0)
    assert r.techniques == ("T1190.001",) and "report--a" in r.incident.summary
    assert inc.severity == Severity.HIGH  # the input is untouched
    assert raise_priority([r.incident], {"report--a": {"T1190.001"}}) == []  # the same report twice: once


def test_import_hook_raises_local_incidents(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "hs.db"), "local")
    alerts = sample_alerts(4)
    store.alerts.add_many(alerts)
    inc = dataclasses.replace(sample_incident(alerts), severity=Severity.MEDIUM, score=0.5)
    store.incidents.upsert_many([inc])
    res = import_bundle(
        _bundle("T1046"),
        Sharing.of(store),
        source="partner-a",
        on_reports=lambda reports, objects: raise_incidents_for_reports(store, reports, objects),
    )
    assert res.ok and res.by_type["report"] == 1
    got = store.incidents.get(inc.id)
    assert got is not None and got.severity == Severity.HIGH and got.score == 0.65
    unrelated = import_bundle(
        _bundle("T1486"),
        Sharing.of(store),
        on_reports=lambda reports, objects: raise_incidents_for_reports(store, reports, objects),
    )
    assert unrelated.ok and store.incidents.get(inc.id).severity == Severity.HIGH  # type: ignore[union-attr]
    store.close()
