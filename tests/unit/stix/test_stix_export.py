"""STIX 2.1 export: valid bundles (OASIS validator), deterministic ids, TLP on everything, no patient ids."""

from __future__ import annotations

from collections import Counter

import orjson
import stix2

from healthsec.model import Alert, Entity, EntityKind, Incident, Severity
from healthsec.share.policy import TLP, TLP_MARKING_IDS
from healthsec.share.stix import export_bundle, validate_bundle
from healthsec.share.stix_ids import sco_id
from healthsec.share.stix_sample import T0, sample_alerts, sample_incident


def make_alerts(n: int = 3) -> list[Alert]:
    return sample_alerts(n)


def make_incident(alerts: list[Alert]) -> Incident:
    return sample_incident(alerts)


def test_export_is_valid_stix_and_holds_every_kind_of_object() -> None:
    alerts = make_alerts()
    bundle = export_bundle([make_incident(alerts)], alerts, producer="General Hospital", tlp=TLP.AMBER)
    assert validate_bundle(bundle) == []
    types = Counter(o["type"] for o in bundle["objects"])
    assert types["incident"] == 1
    assert types["report"] == 1
    assert types["attack-pattern"] == 3  # T1046, T1190 from the incident's alerts, T1110 from the third
    assert types["indicator"] == 6  # one per actor IP and one per file name
    assert types["observed-data"] == 3
    assert types["sighting"] == 3
    assert types["relationship"] >= 6
    assert types["vulnerability"] == 1
    assert types["identity"] == 1
    assert types["marking-definition"] == 1
    by_id = {o["id"]: o for o in bundle["objects"]}
    report = next(o for o in bundle["objects"] if o["type"] == "report")
    assert all(ref in by_id for ref in report["object_refs"])
    assert any(by_id[r]["type"] == "attack-pattern" for r in report["object_refs"])
    ip_ind = [o for o in bundle["objects"] if o["type"] == "indicator" and "ipv4-addr" in o["pattern"]]
    assert ip_ind[0]["pattern"] == "[ipv4-addr:value = '203.0.0.0']"
    assert ip_ind[0]["confidence"] == 87
    file_ind = next(o for o in bundle["objects"] if o["type"] == "indicator" and "file:" in o["pattern"])
    assert file_ind["pattern"] == "[file:name = 'evil0\\'s.exe']"
    sighting = next(o for o in bundle["objects"] if o["type"] == "sighting")
    assert sighting["where_sighted_refs"] == [
        next(o["id"] for o in bundle["objects"] if o["type"] == "identity")
    ]
    ap = next(o for o in bundle["objects"] if o["type"] == "attack-pattern")
    assert ap["external_references"][0]["source_name"] == "mitre-attack"
    amber = TLP_MARKING_IDS[TLP.AMBER]
    for obj in bundle["objects"]:
        if obj["type"] != "marking-definition":
            assert obj["object_marking_refs"] == [amber], obj["id"]
    # the library at the boundary agrees: every object parses
    parsed = stix2.parse(orjson.dumps(bundle).decode(), allow_custom=False)
    assert len(parsed.objects) == len(bundle["objects"])


def test_ids_are_deterministic_and_scos_follow_the_standard() -> None:
    alerts = make_alerts(2)
    a = export_bundle([make_incident(alerts)], alerts, producer="General Hospital")
    b = export_bundle([make_incident(alerts)], alerts, producer="General Hospital")
    assert [o["id"] for o in a["objects"]] == [o["id"] for o in b["objects"]]
    assert a["id"] != b["id"]
    assert sco_id("ipv4-addr", {"value": "203.0.0.1"}) == stix2.IPv4Address(value="203.0.0.1").id


def test_patient_and_user_entities_never_become_stix_content() -> None:
    alerts = make_alerts(2)
    text = orjson.dumps(export_bundle([make_incident(alerts)], alerts, producer="H")).decode()
    assert "MRN-0042-SECRET" not in text
    assert "dr.jones" not in text


def test_alerts_outside_incidents_are_exported_and_unscaled_scores_give_no_confidence() -> None:
    alert = make_alerts(1)[0]
    odd = Alert(
        id="odd",
        ts=T0,
        detector="d",
        detector_version="1",
        title="t",
        score=7.5,
        severity=Severity.LOW,
        explanation="e",
        entities=(Entity(EntityKind.IP, "198.51.100.7"),),
        techniques=(),
    )
    bundle = export_bundle([], [alert, odd], producer="H", tlp=TLP.GREEN)
    assert validate_bundle(bundle) == []
    odd_ind = next(o for o in bundle["objects"] if o.get("pattern") == "[ipv4-addr:value = '198.51.100.7']")
    assert "confidence" not in odd_ind
    assert not any(o["type"] in ("incident", "report") for o in bundle["objects"])


def test_validator_reports_a_broken_bundle() -> None:
    alerts = make_alerts(1)
    bundle = export_bundle([], alerts, producer="H")
    ind = next(o for o in bundle["objects"] if o["type"] == "indicator")
    ind["pattern"] = "[ipv4-addr:value = "
    errors = validate_bundle(bundle)
    assert errors
    assert ind["id"] in errors[0]
