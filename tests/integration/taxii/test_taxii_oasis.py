"""Every OASIS STIX 2.1 example bundle through the OASIS taxii2-client against our server over HTTP.

Each bundle is added to a collection; each object is read back by its id (upper-case UUID hex
normalised); a second reader sees other, stable ids it can read back too, and never the originals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from taxii2client.v21 import Collection

from healthsec.share.stix_ids import normalise_id

Taxii = Any  # the fixture object from conftest.py
SECRET = "correct horse battery staple"
TLP_RED = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"  # above both partners' AMBER ceiling


def _bundles(shared_data: Path) -> list[tuple[str, list[dict[str, Any]]]]:
    out = []
    for path in sorted((shared_data / "stix21-examples-oasis" / "examples").rglob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        out.append((path.name, doc["objects"] if doc.get("type") == "bundle" else [doc]))
    assert len(out) == 8
    return out


def test_every_oasis_example_is_accepted_and_reads_back_by_its_id(taxii: Taxii, shared_data: Path) -> None:
    inbox = Collection(f"{taxii.root}collections/{taxii.inbox}/", user="stmary", password=SECRET)
    total = 0
    for name, objects in _bundles(shared_data):
        status = inbox.add_objects({"objects": objects})
        assert status.status == "complete", name
        assert status.failure_count == 0, (name, status.failures)
        assert status.success_count == len(objects), name
        total += len(objects)
        for obj in objects:
            oid = normalise_id(obj["id"])
            if TLP_RED in obj.get("object_marking_refs", []):
                continue  # withheld by the partner policy even from its sender (checked below)
            got = inbox.get_object(obj["id"])  # as written, upper-case hex included
            assert [o["id"] for o in got["objects"]] == [oid], (name, obj["id"])
            versions = inbox.object_versions(oid)["versions"]
            assert versions == [obj.get("modified", obj.get("created"))] or "created" not in obj, name
            assert len(versions) == 1
    assert total == 260
    stored = {o.id for o in taxii.sharing.objects.page(taxii.inbox, limit=1000).items}
    assert "relationship--81f12913-1372-4c96-85ec-e9034ac98aba" in stored  # upper-case hex normalised
    assert not any(c.isupper() for oid in stored for c in oid.partition("--")[2])
    with pytest.raises(requests.HTTPError, match="404"):
        inbox.get_object("campaign--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061")  # TLP:RED leaves to no one


def test_another_reader_gets_stable_ids_of_its_own_and_reads_them_back(
    taxii: Taxii, shared_data: Path
) -> None:
    _, apt1 = next(b for b in _bundles(shared_data) if b[0] == "apt1.json")
    sender = Collection(f"{taxii.root}collections/{taxii.inbox}/", user="stmary", password=SECRET)
    assert sender.add_objects({"objects": apt1}).success_count == len(apt1)
    taxii.sharing.partners.grant("reader", taxii.inbox, read=True, write=False)
    reader = Collection(f"{taxii.root}collections/{taxii.inbox}/", user="reader", password=SECRET + "-r")
    first = reader.get_objects(limit=1000)["objects"]
    again = reader.get_objects(limit=1000)["objects"]
    assert [o["id"] for o in first] == [o["id"] for o in again]  # the same id on every read
    originals = {o["id"] for o in apt1}
    assert not originals & {o["id"] for o in first}  # the sender's ids do not leak to another reader
    ids = {o["id"] for o in first}
    for obj in first:  # references point at ids of the same view
        for key, value in obj.items():
            if key.endswith("_ref") and value.startswith(("indicator", "malware", "intrusion-set")):
                assert value in ids, (obj["id"], key)
    for obj in first[:10]:
        got = reader.get_object(obj["id"])
        assert [o["id"] for o in got["objects"]] == [obj["id"]]
    with pytest.raises(requests.HTTPError, match="404"):
        reader.get_object(apt1[0]["id"])  # the raw id reveals nothing: not found under it
