"""The exit door: privacy transforms then policy; ids re-keyed; no way to build Cleared around it."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from healthsec.privacy.pseudonymise import SharingKeys
from healthsec.share.outbound import Cleared, ClearedText, outbound, outbound_text, sco_id
from healthsec.share.policy import TLP, TLP_MARKING_IDS, PartnerPolicy, SharingPolicy, tlp_marking_definition

KEYS = SharingKeys.from_secret(b"0123456789abcdef0123456789abcdef-community")
ME = "identity--11111111-1111-4111-8111-111111111111"
PARTNER = PartnerPolicy("b", "identity--22222222-2222-4222-8222-222222222222", max_tlp=TLP.AMBER)
GREEN = [TLP_MARKING_IDS[TLP.GREEN]]
T = "2026-03-01T08:00:00.000Z"


def _objects() -> list[dict[str, Any]]:
    internal = {
        "type": "ipv4-addr",
        "spec_version": "2.1",
        "id": sco_id("ipv4-addr", {"value": "10.20.0.5"}),
        "value": "10.20.0.5",
        "object_marking_refs": GREEN,
    }
    external = {
        "type": "ipv4-addr",
        "spec_version": "2.1",
        "id": sco_id("ipv4-addr", {"value": "203.0.113.9"}),
        "value": "203.0.113.9",
        "object_marking_refs": GREEN,
    }
    user = {
        "type": "user-account",
        "spec_version": "2.1",
        "id": sco_id("user-account", {"user_id": "dr.jones"}),
        "user_id": "dr.jones",
        "object_marking_refs": GREEN,
    }
    ind = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--aaaaaaaa-0000-4000-8000-000000000001",
        "created": T,
        "modified": T,
        "created_by_ref": ME,
        "pattern_type": "stix",
        "valid_from": T,
        "pattern": "[ipv4-addr:value = '10.20.0.5'] OR [ipv4-addr:value = '203.0.113.9']",
        "name": "Beacon from PACS-01 by dr.jones",
        "object_marking_refs": GREEN,
        "description": "Patient John Smith (MRN: 00123456) record opened from 10.20.0.5",
    }
    od = {
        "type": "observed-data",
        "spec_version": "2.1",
        "id": "observed-data--aaaaaaaa-0000-4000-8000-000000000002",
        "created": T,
        "modified": T,
        "created_by_ref": ME,
        "first_observed": T,
        "last_observed": T,
        "number_observed": 1,
        "object_refs": [internal["id"], external["id"], user["id"]],
        "object_marking_refs": GREEN,
    }
    me = {
        "type": "identity",
        "spec_version": "2.1",
        "id": ME,
        "created": T,
        "modified": T,
        "name": "St Example Hospital",
        "identity_class": "organization",
        "object_marking_refs": GREEN,
    }
    return [tlp_marking_definition(TLP.GREEN), me, internal, external, user, ind, od]


def test_cleared_cannot_be_forged() -> None:
    with pytest.raises(TypeError, match="only from"):
        Cleared(object(), PARTNER, [], [])
    with pytest.raises(TypeError, match="only from"):
        ClearedText(object(), "x")


def test_outbound_pseudonymises_and_scrubs() -> None:
    objs = _objects()
    cleared = outbound(objs, PARTNER, KEYS, known={"host": {"PACS-01"}, "user": {"dr.jones"}})
    text = json.dumps(cleared.bundle())
    for secret in ("10.20.0.5", "dr.jones", "PACS-01", "John Smith", "00123456"):
        assert secret not in text
    assert "203.0.113.9" in text  # external indicators stay useful to partners
    by_type = {o["type"]: o for o in cleared.objects if o["type"] != "ipv4-addr"}
    ips = [o["value"] for o in cleared.objects if o["type"] == "ipv4-addr"]
    assert len(ips) == 2
    assert all(ipaddress.ip_address(v).version == 4 for v in ips)
    ind = by_type["indicator"]
    assert ind["id"] != objs[5]["id"]  # SDO ids are re-keyed: never a hash of raw content
    assert ind["name"].startswith("Beacon from host-")
    od = by_type["observed-data"]
    present = {o["id"] for o in cleared.objects}
    assert set(od["object_refs"]) <= present  # references follow the new ids
    assert sco_id("ipv4-addr", {"value": "203.0.113.9"}) in present  # unchanged SCOs keep their STIX id
    assert by_type["identity"]["id"] == ME  # a named partner sees who we are
    assert objs[5]["name"] == "Beacon from PACS-01 by dr.jones"  # input untouched
    again = outbound(objs, PARTNER, KEYS, known={"host": {"PACS-01"}, "user": {"dr.jones"}})
    assert [o["id"] for o in again.objects] == [o["id"] for o in cleared.objects]  # stable across exports


def test_outbound_applies_policy_after_privacy() -> None:
    objs = _objects()
    objs[5]["object_marking_refs"] = [TLP_MARKING_IDS[TLP.RED]]
    anon = PartnerPolicy("c", "identity--33333333-3333-4333-8333-333333333333", anonymous=True)
    cleared = outbound(objs, anon, KEYS)
    text = json.dumps(cleared.bundle())
    assert "indicator" not in {o["type"] for o in cleared.objects}
    assert [d.reason for d in cleared.withheld] == ["TLP:RED never leaves"]
    assert ME not in text
    assert "St Example Hospital" not in text


def test_outbound_text() -> None:
    out = outbound_text(
        "dr.jones on 10.1.2.3 viewed MRN: 778812 (DOB 01/02/1970); C2 at 198.51.100.7",
        KEYS,
        known={"user": {"dr.jones"}},
    )
    assert isinstance(out, ClearedText)
    for secret in ("dr.jones", "10.1.2.3", "778812", "01/02/1970"):
        assert secret not in out
    assert "198.51.100.7" in out
    assert out.startswith("user-")


def test_second_pass_changes_nothing() -> None:
    """Objects already cleared under this key (e.g. kept in a TAXII collection) pass the door unchanged."""
    first = outbound(_objects(), PARTNER, KEYS, known={"host": {"PACS-01"}})
    again = outbound(list(first.objects), PARTNER, KEYS, known={"host": {"PACS-01"}})
    assert list(again.objects) == list(first.objects)
    stamps = {o.get("x_healthsec_cleared") for o in first.objects if o["type"] != "marking-definition"}
    assert len(stamps) == 1
    assert None not in stamps
    other = SharingKeys.from_secret(b"another-community-key-0123456789abcdef")
    third = outbound(list(first.objects), PARTNER, other)
    assert {o["id"] for o in third.objects if o["type"] == "indicator"} != {
        o["id"] for o in first.objects if o["type"] == "indicator"
    }


def test_ipv6_internal_pseudonymised_external_kept() -> None:
    ula = {
        "type": "ipv6-addr",
        "spec_version": "2.1",
        "id": sco_id("ipv6-addr", {"value": "fd00:10:20::5"}),
        "value": "fd00:10:20::5",
    }
    ext = {
        "type": "ipv6-addr",
        "spec_version": "2.1",
        "id": sco_id("ipv6-addr", {"value": "2001:db8::7"}),
        "value": "2001:db8::7",
    }
    note = {
        "type": "note",
        "spec_version": "2.1",
        "id": "note--aaaaaaaa-0000-4000-8000-000000000009",
        "created": T,
        "modified": T,
        "content": "seen from fd00:10:20::5 and 2001:db8::7",
        "object_refs": [ula["id"], ext["id"]],
    }
    cleared = outbound(
        [ula, ext, note],
        PartnerPolicy("b", PARTNER.organisation, TLP.GREEN),
        KEYS,
        policy=SharingPolicy(default_tlp=TLP.GREEN),
    )
    text = json.dumps(cleared.bundle())
    assert "fd00:10:20::5" not in text
    assert "2001:db8::7" in text
    values = [o["value"] for o in cleared.objects if o["type"] == "ipv6-addr"]
    assert all(ipaddress.ip_address(v).version == 6 for v in values)
    shared_note = next(o for o in cleared.objects if o["type"] == "note")
    assert set(shared_note["object_refs"]) == {o["id"] for o in cleared.objects if o["type"] == "ipv6-addr"}


def test_internal_networks_option_widens_what_is_internal() -> None:
    ip = {
        "type": "ipv4-addr",
        "spec_version": "2.1",
        "id": sco_id("ipv4-addr", {"value": "198.18.4.9"}),
        "value": "198.18.4.9",
    }
    partner = PartnerPolicy("b", PARTNER.organisation, TLP.GREEN)
    policy = SharingPolicy(default_tlp=TLP.GREEN)
    assert outbound([ip], partner, KEYS, policy=policy).objects[0]["value"] == "198.18.4.9"
    widened = outbound([ip], partner, KEYS, policy=policy, internal_networks=["198.18.0.0/15"])
    assert widened.objects[0]["value"] != "198.18.4.9"
