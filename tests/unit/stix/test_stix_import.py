"""Partner bundle import: hostile bundles rejected whole with a reason and quarantined; good ones deduped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from healthsec.share.stix import BundleRejected, export_bundle, import_bundle, parse_bundle
from healthsec.share.stix_sample import sample_alerts as make_alerts
from healthsec.share.stix_sample import sample_incident as make_incident
from healthsec.store import Store
from healthsec.store.sharing import Sharing

GOOD_ID = "indicator--00000000-0000-4000-8000-000000000001"


def _indicator(**over: Any) -> dict[str, Any]:
    obj = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": GOOD_ID,
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
        "pattern": "[ipv4-addr:value = '198.51.100.1']",
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
        "confidence": 70,
        "created_by_ref": "identity--11111111-1111-4111-8111-111111111111",
    }
    obj.update(over)
    return {k: v for k, v in obj.items() if v is not None}


def _bundle(*objects: Any, **top: Any) -> bytes:
    doc = {"type": "bundle", "id": "bundle--22222222-2222-4222-8222-222222222222", "objects": list(objects)}
    doc.update(top)
    return orjson.dumps(doc)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"type": "bundle", "objects": [', "malformed JSON"),
        (b"[1, 2]", "not a STIX bundle"),
        (_bundle(_indicator(), spec_version="2.0"), "only 2.1 is accepted"),
        (_bundle(_indicator(spec_version="2.0")), "object 1 (indicator--"),
        (
            _bundle(
                _indicator(),
                {
                    "type": "x-evil",
                    "id": "x-evil--00000000-0000-4000-8000-000000000009",
                    "spec_version": "2.1",
                    "created": "2026-01-01T00:00:00Z",
                    "modified": "2026-01-01T00:00:00Z",
                },
            ),
            "object 2 (x-evil--",
        ),
        (_bundle(_indicator(id="malware--00000000-0000-4000-8000-000000000001")), "does not have the form"),
        (_bundle(_indicator(modified="yesterday")), "'modified' is not a STIX timestamp"),
        (
            _bundle(_indicator(modified="2026-13-45T99:99:99Z")),
            "'modified' '2026-13-45T99:99:99Z' is not a real",
        ),
        (
            _bundle(_indicator(created="0000-01-01T00:00:00Z")),
            "'created' '0000-01-01T00:00:00Z' is not a real",
        ),
        (_bundle(_indicator(modified="2025-12-31T00:00:00.000Z")), "'modified' is earlier than 'created'"),
        (_bundle(_indicator(confidence=500)), "confidence must be an integer"),
        (_bundle(_indicator(pattern=None)), "indicator without a pattern"),
        (_bundle("just a string"), "object 1: not a JSON object"),
        (_bundle(_indicator(), id="bundle--nope"), "bundle id"),
        (
            orjson.dumps(
                {"type": "bundle", "id": "bundle--22222222-2222-4222-8222-222222222222", "objects": {}}
            ),
            "not a list",
        ),
    ],
)
def test_hostile_bundles_are_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(BundleRejected) as err:
        parse_bundle(raw)
    assert reason in err.value.reason


def test_size_and_count_limits() -> None:
    raw = _bundle(_indicator())
    with pytest.raises(BundleRejected, match=r"oversized: .* bytes"):
        parse_bundle(raw, max_bytes=len(raw) - 1)
    with pytest.raises(BundleRejected, match="oversized: 1 objects"):
        parse_bundle(_bundle(_indicator()), max_objects=0)
    assert parse_bundle(raw, max_bytes=len(raw))[1][0]["id"] == GOOD_ID
    custom = {
        "type": "x-hospital-ward",
        "id": "x-hospital-ward--00000000-0000-4000-8000-000000000009",
        "spec_version": "2.1",
        "created": "2026-01-01T00:00:00Z",
        "modified": "2026-01-01T00:00:00Z",
    }
    assert len(parse_bundle(_bundle(custom), allow_custom=["x-hospital-ward"])[1]) == 1


@pytest.fixture
def sharing(tmp_path: Path) -> Sharing:
    return Sharing.of(Store.open(str(tmp_path / "s.db"), "org-a"))


def test_a_bad_object_late_in_a_bundle_stores_nothing_and_is_quarantined(sharing: Sharing) -> None:
    good = [_indicator(id=f"indicator--00000000-0000-4000-8000-{i:012d}") for i in range(50)]
    raw = _bundle(*good, _indicator(id="indicator--00000000-0000-4000-8000-999999999999", created="bad"))
    res = import_bundle(raw, sharing, source="partner-b")
    assert not res.ok
    assert res.rejected is not None
    assert "object 51" in res.rejected
    coll = sharing.collections.get("inbox")
    assert coll is None or sharing.objects.count(coll["id"]) == 0
    q = sharing.quarantine.list()
    assert [x["id"] for x in q] == [res.quarantine_id]
    assert q[0]["source"] == "partner-b"
    assert q[0]["size"] == len(raw)


def test_import_dedupes_by_id_and_version_and_keeps_provenance(sharing: Sharing) -> None:
    alerts = make_alerts(3)
    bundle = export_bundle([make_incident(alerts)], alerts, producer="St Mary")
    raw = orjson.dumps(bundle)
    first = import_bundle(raw, sharing, source="stmary")
    assert first.ok
    assert first.added == len(bundle["objects"])
    assert first.duplicates == 0
    assert first.by_type["incident"] == 1
    again = import_bundle(raw, sharing, source="stmary")
    assert again.added == 0
    assert again.duplicates == len(bundle["objects"])
    newer = _indicator(modified="2026-02-01T00:00:00.000Z", confidence=90)
    third = import_bundle(_bundle(_indicator(), newer), sharing, source="other")
    assert third.added == 2
    cid = sharing.collections.get("inbox")["id"]  # type: ignore[index]
    latest = sharing.objects.page(cid, ids=[GOOD_ID]).items
    assert [(o.modified, o.confidence, o.source) for o in latest] == [
        ("2026-02-01T00:00:00.000Z", 90, "other")
    ]
    body = orjson.loads(latest[0].body)
    assert body["created_by_ref"] == "identity--11111111-1111-4111-8111-111111111111"


def test_upper_case_uuid_hex_is_the_same_id_and_is_normalised() -> None:
    upper = GOOD_ID.split("--")[0] + "--" + GOOD_ID.split("--")[1].upper()
    ref = "identity--11111111-AAAA-4111-8111-11111111111A"
    _, objects = parse_bundle(_bundle(_indicator(id=upper, created_by_ref=ref, object_marking_refs=[ref])))
    assert objects[0]["id"] == GOOD_ID
    assert objects[0]["created_by_ref"] == ref.lower()
    assert objects[0]["object_marking_refs"] == [ref.lower()]
    with pytest.raises(BundleRejected, match="does not have the form"):  # the type part stays strict
        parse_bundle(_bundle(_indicator(id="INDICATOR--" + GOOD_ID.split("--")[1])))
