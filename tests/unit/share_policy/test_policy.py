"""TLP 2.0 and partner rules: RED never leaves, AMBER+STRICT, filters, anonymous attribution."""

from __future__ import annotations

from typing import Any

import pytest

from healthsec.share.policy import (
    COMMUNITY_IDENTITY,
    TLP,
    TLP_MARKING_IDS,
    PartnerPolicy,
    SharingPolicy,
    tlp_marking_definition,
    tlp_of,
)

ME = "identity--11111111-1111-4111-8111-111111111111"
PARTNER = "identity--22222222-2222-4222-8222-222222222222"
OTHER = "identity--33333333-3333-4333-8333-333333333333"
T = "2026-03-01T08:00:00.000Z"


def _obj(otype: str, n: int, tlp: TLP | None, **extra: Any) -> dict[str, Any]:
    oid = f"{otype}--0000000{n}-0000-4000-8000-000000000000"
    obj: dict[str, Any] = {
        "type": otype,
        "spec_version": "2.1",
        "id": oid,
        "created_by_ref": ME,
        "created": T,
    }
    if tlp is not None:
        obj["object_marking_refs"] = [TLP_MARKING_IDS[tlp]]
    obj.update(extra)
    return obj


def _ids(objs: list[dict[str, Any]]) -> set[str]:
    return {o["id"] for o in objs}


def test_official_tlp2_ids_and_definition() -> None:
    assert TLP_MARKING_IDS[TLP.CLEAR] == "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
    assert TLP_MARKING_IDS[TLP.AMBER_STRICT] == "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
    md = tlp_marking_definition(TLP.AMBER_STRICT)
    assert md["name"] == "TLP:AMBER+STRICT"
    assert next(iter(md["extensions"].values()))["tlp_2_0"] == "amber+strict"


def test_parse_and_order() -> None:
    assert TLP.parse("TLP:AMBER+STRICT") is TLP.AMBER_STRICT
    assert TLP.parse("white") is TLP.CLEAR
    assert TLP.parse("amber_strict") is TLP.AMBER_STRICT
    assert TLP.CLEAR.rank < TLP.GREEN.rank < TLP.AMBER.rank < TLP.AMBER_STRICT.rank < TLP.RED.rank
    with pytest.raises(ValueError, match="unknown TLP"):
        TLP.parse("purple")


def test_tlp1_marking_is_understood() -> None:
    tlp1_red = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"
    assert tlp_of({"object_marking_refs": [tlp1_red]}) is TLP.RED
    both = [TLP_MARKING_IDS[TLP.GREEN], TLP_MARKING_IDS[TLP.AMBER]]
    assert tlp_of({"object_marking_refs": both}) is TLP.AMBER


def test_partner_policy_validation() -> None:
    with pytest.raises(ValueError, match="RED never leaves"):
        PartnerPolicy("p", PARTNER, max_tlp=TLP.RED)
    with pytest.raises(ValueError, match="identity id"):
        PartnerPolicy("p", "Hospital B")
    assert PartnerPolicy("p", PARTNER, max_tlp="amber+strict").max_tlp is TLP.AMBER_STRICT  # type: ignore[arg-type]


def test_red_never_leaves_even_to_most_trusted_partner() -> None:
    partner = PartnerPolicy("b", PARTNER, max_tlp=TLP.AMBER_STRICT)
    red = _obj("indicator", 1, TLP.RED)
    rel = _obj(
        "relationship",
        2,
        TLP.GREEN,
        source_ref=red["id"],
        target_ref="attack-pattern--x",
        relationship_type="indicates",
    )
    out, withheld = SharingPolicy().decide([red, rel, tlp_marking_definition(TLP.RED)], partner)
    assert out == []
    reasons = {d.object_id: d.reason for d in withheld}
    assert reasons[red["id"]] == "TLP:RED never leaves"
    assert "withheld" in reasons[rel["id"]]


def test_ceiling_and_default_for_unmarked() -> None:
    green_partner = PartnerPolicy("g", PARTNER, max_tlp=TLP.GREEN)
    objs = [
        _obj("indicator", 1, TLP.CLEAR),
        _obj("indicator", 2, TLP.GREEN),
        _obj("indicator", 3, TLP.AMBER),
        _obj("indicator", 4, None),
    ]
    out = SharingPolicy().prepare(objs, green_partner)
    assert _ids(out) == {objs[0]["id"], objs[1]["id"]}  # unmarked counts as AMBER by default
    out = SharingPolicy(default_tlp=TLP.GREEN).prepare(objs, green_partner)
    assert objs[3]["id"] in _ids(out)


def test_amber_strict_only_to_named_organisation() -> None:
    strict = _obj("indicator", 1, TLP.AMBER_STRICT, x_healthsec_recipients=[PARTNER])
    unnamed = _obj("indicator", 2, TLP.AMBER_STRICT)
    trusted = PartnerPolicy("b", PARTNER, max_tlp=TLP.AMBER_STRICT)
    to_partner = SharingPolicy().prepare([strict, unnamed], trusted)
    assert _ids(to_partner) == {strict["id"], unnamed["id"]}
    to_other = SharingPolicy().prepare([strict, unnamed], PartnerPolicy("c", OTHER, max_tlp=TLP.AMBER_STRICT))
    assert _ids(to_other) == {unnamed["id"]}
    to_amber = SharingPolicy().prepare([strict], PartnerPolicy("b", PARTNER, max_tlp=TLP.AMBER))
    assert to_amber == []


def test_type_and_confidence_filters_and_report_refs() -> None:
    ind = _obj("indicator", 1, TLP.GREEN, confidence=90)
    low = _obj("indicator", 2, TLP.GREEN, confidence=20)
    none = _obj("indicator", 3, TLP.GREEN)
    obs = _obj("observed-data", 4, TLP.GREEN, confidence=95, object_refs=["ipv4-addr--a"])
    report = _obj("report", 5, TLP.GREEN, confidence=80, object_refs=[ind["id"], low["id"], obs["id"]])
    partner = PartnerPolicy(
        "b", PARTNER, max_tlp=TLP.AMBER, allowed_types=frozenset({"indicator", "report"}), min_confidence=50
    )
    out, withheld = SharingPolicy().decide([ind, low, none, obs, report], partner)
    assert _ids(out) == {ind["id"], report["id"]}
    shared_report = next(o for o in out if o["type"] == "report")
    assert shared_report["object_refs"] == [ind["id"]]
    assert report["object_refs"] == [ind["id"], low["id"], obs["id"]]  # caller's objects untouched
    reasons = {d.object_id: d.reason for d in withheld}
    assert "below" in reasons[low["id"]]
    assert "no confidence" in reasons[none["id"]]
    assert "not shared" in reasons[obs["id"]]


def test_report_with_no_members_left_is_withheld() -> None:
    red = _obj("indicator", 1, TLP.RED)
    report = _obj("report", 2, TLP.GREEN, object_refs=[red["id"]])
    assert SharingPolicy().prepare([red, report], PartnerPolicy("b", PARTNER, max_tlp=TLP.AMBER)) == []


def test_anonymous_attribution() -> None:
    me = {
        "type": "identity",
        "spec_version": "2.1",
        "id": ME,
        "name": "St Example Hospital",
        "identity_class": "organization",
        "object_marking_refs": [TLP_MARKING_IDS[TLP.GREEN]],
    }
    ind_id = "indicator--00000002-0000-4000-8000-000000000000"
    sighting = _obj("sighting", 1, TLP.GREEN, sighting_of_ref=ind_id, where_sighted_refs=[ME])
    ind = _obj("indicator", 2, TLP.GREEN)
    out = SharingPolicy().prepare([me, sighting, ind], PartnerPolicy("b", PARTNER, anonymous=True))
    text = repr(out)
    assert ME not in text
    assert "St Example Hospital" not in text
    cid = COMMUNITY_IDENTITY["id"]
    assert out[0]["id"] == cid
    assert all(o.get("created_by_ref") == cid for o in out[1:])
    assert next(o for o in out if o["type"] == "sighting")["where_sighted_refs"] == [cid]
    named = SharingPolicy().prepare([me, ind], PartnerPolicy("b", PARTNER))
    assert ME in _ids(named)


def test_transforms_run_before_the_policy() -> None:
    ind = _obj("indicator", 1, TLP.GREEN, description="secret")

    def scrub(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**o, "description": "[scrubbed]"} for o in objs]

    out = SharingPolicy().prepare([ind], PartnerPolicy("b", PARTNER), transforms=[scrub])
    assert out[0]["description"] == "[scrubbed]"
    assert ind["description"] == "secret"


def test_confidence_filter_skips_scos_and_reference_knowledge() -> None:
    ip = {
        "type": "ipv4-addr",
        "spec_version": "2.1",
        "id": "ipv4-addr--1",
        "value": "203.0.113.9",
        "object_marking_refs": [TLP_MARKING_IDS[TLP.GREEN]],
    }
    ap = _obj("attack-pattern", 1, TLP.GREEN, name="Brute Force")
    incident = _obj("incident", 2, TLP.GREEN, name="Spraying")
    partner = PartnerPolicy("b", PARTNER, max_tlp=TLP.AMBER, min_confidence=50)
    out, withheld = SharingPolicy().decide([ip, ap, incident], partner)
    assert _ids(out) == {ip["id"], ap["id"]}
    assert [d.object_id for d in withheld] == [incident["id"]]


def test_emptied_optional_ref_lists_are_removed_not_left_empty() -> None:
    od = _obj("observed-data", 1, TLP.GREEN, object_refs=["ipv4-addr--1"], confidence=90)
    sighting = _obj(
        "sighting",
        2,
        TLP.GREEN,
        sighting_of_ref="attack-pattern--x",
        observed_data_refs=[od["id"]],
        where_sighted_refs=[ME],
        confidence=90,
    )
    ap = {
        "type": "attack-pattern",
        "spec_version": "2.1",
        "id": "attack-pattern--x",
        "created": T,
        "name": "x",
        "object_marking_refs": [TLP_MARKING_IDS[TLP.GREEN]],
    }
    partner = PartnerPolicy(
        "b", PARTNER, max_tlp=TLP.AMBER, allowed_types=frozenset({"sighting", "attack-pattern"})
    )
    out = SharingPolicy().prepare([od, sighting, ap], partner)
    shared = next(o for o in out if o["type"] == "sighting")
    assert "observed_data_refs" not in shared
    assert shared["sighting_of_ref"] == "attack-pattern--x"


def test_module_level_prepare_uses_the_defaults() -> None:
    from healthsec.share.policy import prepare

    objs = [_obj("indicator", 1, None), _obj("indicator", 2, TLP.GREEN)]
    assert _ids(prepare(objs, PartnerPolicy("g", PARTNER))) == {objs[1]["id"]}
    assert _ids(prepare(objs, PartnerPolicy("a", PARTNER, max_tlp=TLP.AMBER))) == {o["id"] for o in objs}
