"""MISP export/import through misp-stix: IOCs, ATT&CK galaxies, TLP tags; hostile or broken input refused."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from pymisp import MISPEvent
from stix2validator import ValidationOptions, validate_instance

from healthsec.privacy.pseudonymise import SharingKeys
from healthsec.share.misp import (
    MispFormatError,
    dumps_misp,
    from_misp_event,
    load_misp,
    misp_tlp,
    to_misp_event,
)
from healthsec.share.outbound import outbound
from healthsec.share.policy import TLP, TLP_MARKING_IDS, PartnerPolicy, tlp_marking_definition

KEYS = SharingKeys.from_secret(b"misp-tests-community-key-0123456789")
ME = "identity--11111111-1111-4111-8111-111111111111"
PARTNER = PartnerPolicy("b", "identity--22222222-2222-4222-8222-222222222222", max_tlp=TLP.AMBER_STRICT)
T = "2026-03-01T08:00:00.000Z"


def _bundle_objects(tlp: TLP) -> list[dict[str, Any]]:
    mark = [TLP_MARKING_IDS[tlp]]
    base = {
        "spec_version": "2.1",
        "created": T,
        "modified": T,
        "created_by_ref": ME,
        "object_marking_refs": mark,
    }
    ap = {
        **base,
        "type": "attack-pattern",
        "id": "attack-pattern--aaaaaaaa-0000-4000-8000-000000000001",
        "name": "Network Service Discovery",
        "external_references": [
            {
                "source_name": "mitre-attack",
                "external_id": "T1046",
                "url": "https://attack.mitre.org/techniques/T1046/",
            }
        ],
    }
    ind = {
        **base,
        "type": "indicator",
        "id": "indicator--aaaaaaaa-0000-4000-8000-000000000002",
        "name": "Scanner",
        "pattern": "[ipv4-addr:value = '203.0.113.9']",
        "pattern_type": "stix",
        "valid_from": T,
        "indicator_types": ["malicious-activity"],
        "confidence": 80,
    }
    rel = {
        **base,
        "type": "relationship",
        "id": "relationship--aaaaaaaa-0000-4000-8000-000000000003",
        "relationship_type": "indicates",
        "source_ref": ind["id"],
        "target_ref": ap["id"],
    }
    vuln = {
        **base,
        "type": "vulnerability",
        "id": "vulnerability--aaaaaaaa-0000-4000-8000-000000000004",
        "name": "CVE-2021-44228",
        "external_references": [{"source_name": "cve", "external_id": "CVE-2021-44228"}],
    }
    report = {
        **base,
        "type": "report",
        "id": "report--aaaaaaaa-0000-4000-8000-000000000005",
        "name": "Scan against the PACS",
        "published": T,
        "report_types": ["indicator"],
        "object_refs": [ap["id"], ind["id"], rel["id"], vuln["id"]],
    }
    me = {
        "type": "identity",
        "spec_version": "2.1",
        "id": ME,
        "created": T,
        "modified": T,
        "name": "St Example Hospital",
        "identity_class": "organization",
        "object_marking_refs": mark,
    }
    return [tlp_marking_definition(tlp), me, ap, ind, rel, vuln, report]


def _event(tlp: TLP = TLP.AMBER) -> dict[str, Any]:
    return to_misp_event(outbound(_bundle_objects(tlp), PARTNER, KEYS))


def test_export_has_attributes_galaxies_tags() -> None:
    event = _event(TLP.AMBER_STRICT)["Event"]
    assert event["info"] == "Scan against the PACS"
    values = {(a["type"], a["value"]) for a in event["Attribute"]}
    assert ("ip-dst", "203.0.113.9") in values
    assert ("vulnerability", "CVE-2021-44228") in values
    tags = {t["name"] for t in event["Tag"]}
    assert "tlp:amber+strict" in tags
    assert 'misp-galaxy:mitre-attack-pattern="Network Service Discovery - T1046"' in tags
    attack = next(g for g in event["Galaxy"] if g["type"] == "mitre-attack-pattern")
    assert attack["GalaxyCluster"][0]["meta"]["external_id"] == ["T1046"]
    assert event["Orgc"]["name"] == "St Example Hospital"
    assert misp_tlp({"Event": event}) is TLP.AMBER_STRICT


def test_export_is_readable_by_pymisp() -> None:
    """PyMISP (MISP's own client library) loads our JSON as a MISP event with the same content."""
    ev = MISPEvent()
    ev.load(dumps_misp(_event()).decode())
    assert ev.info == "Scan against the PACS"
    assert "203.0.113.9" in {a.value for a in ev.attributes}
    assert "tlp:amber" in {t.name for t in ev.tags}


def test_round_trip_back_to_valid_stix() -> None:
    objects = from_misp_event(dumps_misp(_event()))
    bundle = {"type": "bundle", "id": "bundle--aaaaaaaa-0000-4000-8000-0000000000ff", "objects": objects}
    result = validate_instance(bundle, ValidationOptions(strict=False))
    assert result.is_valid
    patterns = [o["pattern"] for o in objects if o["type"] == "indicator"]
    assert any("203.0.113.9" in p for p in patterns)
    assert any(o["type"] == "vulnerability" and o["name"] == "CVE-2021-44228" for o in objects)


def test_import_event_built_by_pymisp() -> None:
    """An event as a MISP instance would emit it (built with PyMISP) converts to our STIX objects."""
    ev = MISPEvent()
    ev.info = "Ransomware C2 seen by partner"
    ev.add_attribute("ip-dst", "198.51.100.23", to_ids=True)
    ev.add_attribute("domain", "c2.example.net", to_ids=True)
    ev.add_attribute(
        "sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", to_ids=True
    )
    ev.add_tag("tlp:green")
    ev.add_tag('misp-galaxy:mitre-attack-pattern="Data Encrypted for Impact - T1486"')
    data = json.loads(ev.to_json())
    objects = from_misp_event(data, source="partner.json")
    patterns = " ".join(o["pattern"] for o in objects if o["type"] == "indicator")
    for ioc in ("198.51.100.23", "c2.example.net", "e3b0c442"):
        assert ioc in patterns
    assert misp_tlp(data) is TLP.GREEN


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "partner.json: not JSON"),
        (b"[1, 2]", "a MISP event is a JSON object"),
        (b'{"Event": {"Attribute": []}}', "no Event.info"),
        (b'{"Event": {"info": "x", "Attribute": {"a": 1}}}', "Event.Attribute must be a list"),
        (
            b'{"Event": {"info": "x", "Attribute": [{"value": "1.2.3.4"}]}}',
            r"Attribute\[0\] has no type/value",
        ),
        (b'{"Event": {"info": "empty"}}', "nothing convertible"),
    ],
)
def test_malformed_events_are_refused_with_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(MispFormatError, match=reason):
        from_misp_event(payload, source="partner.json")


def test_oversized_event_refused() -> None:
    big = b'{"Event": {"info": "' + b"x" * (21 * 1024 * 1024) + b'"}}'
    with pytest.raises(MispFormatError, match="over the"):
        load_misp(big, source="big.json")


def test_nothing_cleared_means_no_event() -> None:
    red = outbound(_bundle_objects(TLP.RED), PARTNER, KEYS)
    with pytest.raises(ValueError, match="nothing cleared"):
        to_misp_event(red)


def test_attack_tags_match_misp_galaxy_clusters(shared_data: Path) -> None:
    """With ATT&CK names, our tags are exactly the tag names of MISP's own mitre-attack-pattern clusters."""
    with gzip.open(shared_data / "misp-galaxy" / "clusters" / "mitre-attack-pattern.json.gz", "rt") as fh:
        galaxy = json.load(fh)
    misp_tags = {f'misp-galaxy:{galaxy["type"]}="{v["value"]}"' for v in galaxy["values"]}
    names = {"T1046": "Network Service Discovery"}
    event = to_misp_event(outbound(_bundle_objects(TLP.GREEN), PARTNER, KEYS), technique_names=names)["Event"]
    ours = {t["name"] for t in event["Tag"] if t["name"].startswith("misp-galaxy:mitre-attack-pattern=")}
    assert ours == {'misp-galaxy:mitre-attack-pattern="Network Service Discovery - T1046"'}
    assert ours <= misp_tags
    galaxy_uuid = next(g["uuid"] for g in event["Galaxy"] if g["type"] == "mitre-attack-pattern")
    with open(shared_data / "misp-galaxy" / "galaxies" / "mitre-attack-pattern.json") as fh:
        assert json.load(fh)["uuid"] == galaxy_uuid


def test_ics_techniques_use_misps_ics_galaxy(shared_data: Path) -> None:
    with gzip.open(shared_data / "misp-galaxy" / "clusters" / "mitre-ics-techniques.json.gz", "rt") as fh:
        ics = json.load(fh)
    misp_tags = {f'misp-galaxy:{ics["type"]}="{v["value"]}"' for v in ics["values"]}
    objs = _bundle_objects(TLP.GREEN)
    ap = objs[2]
    ap["external_references"] = [{"source_name": "mitre-attack", "external_id": "T0878"}]
    event = to_misp_event(outbound(objs, PARTNER, KEYS), technique_names={"T0878": "Alarm Suppression"})[
        "Event"
    ]
    tags = {t["name"] for t in event["Tag"] if t["name"].startswith("misp-galaxy:mitre-")}
    assert tags == {'misp-galaxy:mitre-ics-techniques="Alarm Suppression"'}
    assert tags <= misp_tags
    assert [g["type"] for g in event["Galaxy"] if g["type"].startswith("mitre-")] == ["mitre-ics-techniques"]
