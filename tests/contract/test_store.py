"""The store contract, run over SQLite and PostgreSQL alike: idempotent writes, scoping, round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from healthsec.model import Alert, Asset, Criticality, Flow, Incident, RecordAccess, Severity
from healthsec.store import Store, StoreError

T = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


def flows(n: int) -> list[Flow]:
    return [
        Flow(
            id=f"f{i}",
            ts=T + timedelta(seconds=i),
            source="t",
            src_ip="10.0.0.1",
            dst_ip="10.0.0.2",
            dst_port=443,
            bytes_out=i,
        )
        for i in range(n)
    ]


def alert(i: int, evidence: tuple[str, ...] = ("f1",)) -> Alert:
    return Alert(
        id=f"a{i}",
        ts=T + timedelta(minutes=i),
        detector="d",
        detector_version="1",
        title=f"t{i}",
        score=0.5,
        severity=Severity.HIGH,
        explanation="why",
        evidence=evidence,
    )


def test_events_are_idempotent_on_id(store: Store) -> None:
    assert store.events.add_many(flows(1200)) == 1200
    assert store.events.add_many(flows(1200)) == 0
    assert store.events.count() == 1200
    access = RecordAccess(id="r1", ts=T, source="t", user="n001", patient_id="MRN1")
    store.events.add_many([access])
    assert store.events.get("r1") == access
    assert store.events.count("access") == 1
    assert [e.id for e in store.events.iter("flow")][:3] == ["f0", "f1", "f2"]


def test_alerts_are_idempotent_and_grow_in_place(store: Store) -> None:
    assert store.alerts.add_many([alert(1), alert(2)]) == 2
    assert store.alerts.add_many([alert(1), alert(2)]) == 0
    assert store.alerts.add_many([alert(1, ("f1", "f2"))]) == 0
    assert store.alerts.count() == 2
    got = store.alerts.get("a1")
    assert got is not None and got.evidence == ("f1", "f2")
    assert [a.id for a in store.alerts.list(min_severity=int(Severity.HIGH), limit=1, offset=1)] == ["a2"]


def test_incidents_upsert_link_alerts_and_change_status(store: Store) -> None:
    store.alerts.add_many([alert(1), alert(2), alert(3)])
    inc = Incident(
        id="i1",
        title="x",
        first_seen=T,
        last_seen=T,
        severity=Severity.HIGH,
        score=0.7,
        alert_ids=("a1", "a2"),
    )
    store.incidents.upsert_many([inc])
    store.incidents.upsert_many([inc])
    assert store.incidents.count() == 1
    assert {a.id for a in store.alerts.list(incident_id="i1")} == {"a1", "a2"}
    store.alerts.add_many([alert(1, ("f9",))])  # a re-sent alert keeps its incident link
    assert {a.id for a in store.alerts.list(incident_id="i1")} == {"a1", "a2"}
    assert store.incidents.set_status("i1", "contained")
    got = store.incidents.get("i1")
    assert got is not None and got.status.value == "contained"
    assert not store.incidents.set_status("nope", "closed")
    store.incidents.replace_all([])
    assert store.incidents.count() == 0


def test_assets_and_audit(store: Store) -> None:
    a = Asset(
        id="asset:pump-1",
        name="pump-1",
        role="infusion_pump",
        zone="devices",
        ip="10.20.2.11",
        criticality=Criticality.LIFE_SUSTAINING,
    )
    store.assets.upsert_many([a, a])
    assert store.assets.count() == 1
    assert store.assets.by_ip("10.20.2.11") == a
    store.audit.record("tester", "asset.import", target="pump-1", rows=1)
    (row,) = store.audit.list()
    assert row["actor"] == "tester" and row["detail"] == {"rows": 1}


def test_organisations_do_not_see_each_other(store: Store) -> None:
    store.events.add_many(flows(3))
    store.alerts.add_many([alert(1)])
    other = store.for_org(store.org + "-b")
    assert other.events.count() == 0 and other.alerts.count() == 0 and other.alerts.get("a1") is None
    assert other.events.add_many(flows(3)) == 3  # the same ids in another organisation are new there


def test_unreachable_database_is_one_clear_line() -> None:
    with pytest.raises(StoreError) as err:
        Store.open("postgresql://healthsec:secret@127.0.0.1:1/none")
    msg = str(err.value)
    assert "cannot open database" in msg and "secret" not in msg and "\n" not in msg


def test_merged_incident_replaces_its_parts_and_status_survives(store: Store) -> None:
    store.alerts.add_many([alert(1), alert(2), alert(3)])
    first = Incident(
        id="i1", title="x", first_seen=T, last_seen=T, severity=Severity.HIGH, score=0.5, alert_ids=("a1",)
    )
    second = Incident(
        id="i2",
        title="y",
        first_seen=T,
        last_seen=T,
        severity=Severity.HIGH,
        score=0.5,
        alert_ids=("a2", "a3"),
    )
    store.incidents.upsert_many([first, second])
    assert store.incidents.set_status("i1", "investigating")
    merged = Incident(
        id="i1",
        title="x",
        first_seen=T,
        last_seen=T,
        severity=Severity.HIGH,
        score=0.9,
        alert_ids=("a1", "a2", "a3"),
    )
    store.incidents.upsert_many([merged])
    assert [i.id for i in store.incidents.list()] == ["i1"]
    got = store.incidents.get("i1")
    assert got is not None
    assert got.status.value == "investigating"
    assert {a.id for a in store.alerts.list(incident_id="i1")} == {"a1", "a2", "a3"}
