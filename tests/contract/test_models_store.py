"""Model artefact store contract (SQLite and PostgreSQL): versions, one promoted per kind, files, orgs."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from healthsec.model.artefacts import ArtefactStatus
from healthsec.store import Store
from healthsec.store.models import ArtefactNotFound, models
from healthsec.store.schema_models import model_artefacts
from healthsec.testing.artefacts import artefact_of, telemetry_files

FILES = telemetry_files()
ART = artefact_of("telemetry", FILES)


def test_add_numbers_versions_per_kind_and_keeps_bytes(store: Store) -> None:
    repo = models(store)
    first = repo.add(ART, FILES)
    second = repo.add(ART, FILES)
    other = repo.add(dataclasses.replace(ART, kind="telemetry-b"), FILES)
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert first.id == "telemetry-v1" and first.status is ArtefactStatus.CANDIDATE
    assert repo.files(first.id) == FILES
    got = repo.get("telemetry-v2")
    assert got is not None and got.to_dict() == second.to_dict()
    assert [a.id for a in repo.list()] == ["telemetry-v1", "telemetry-v2", "telemetry-b-v1"]
    assert [a.id for a in repo.list(kind="telemetry-b")] == ["telemetry-b-v1"]


def test_add_refuses_files_that_do_not_match_the_metadata(store: Store) -> None:
    repo = models(store)
    with pytest.raises(ValueError, match=r"model\.txt does not match its recorded SHA-256"):
        repo.add(ART, {**FILES, "model.txt": b"tampered"})
    with pytest.raises(ValueError, match="missing"):
        repo.add(ART, {"meta.json": FILES["meta.json"]})
    assert repo.list() == []


def test_exactly_one_promoted_per_kind_previous_retired(store: Store) -> None:
    repo = models(store)
    for _ in range(3):
        repo.add(ART, FILES)
    assert repo.promoted("telemetry") is None
    repo.promote("telemetry", 1)
    repo.promote("telemetry", 3)
    status = {a.version: a.status for a in repo.list(kind="telemetry")}
    assert status == {1: ArtefactStatus.RETIRED, 2: ArtefactStatus.CANDIDATE, 3: ArtefactStatus.PROMOTED}
    promoted = repo.promoted("telemetry")
    assert promoted is not None and promoted.version == 3
    assert repo.promoted_ids() == {"telemetry": "telemetry-v3"}
    repo.promote("telemetry", 1)  # roll back to a retired version
    assert repo.promoted_ids() == {"telemetry": "telemetry-v1"}
    assert [a.version for a in repo.list(status="promoted")] == [1]


def test_the_database_refuses_a_second_promoted_row(store: Store) -> None:
    repo = models(store)
    repo.add(ART, FILES)
    repo.add(ART, FILES)
    repo.promote("telemetry", 1)
    t = model_artefacts
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(
            update(t).where(t.c.org == store.org, t.c.id == "telemetry-v2").values(status="promoted")
        )


def test_retire_takes_it_out_of_service(store: Store) -> None:
    repo = models(store)
    repo.add(ART, FILES)
    repo.promote("telemetry", 1)
    retired = repo.retire("telemetry", 1)
    assert retired.status is ArtefactStatus.RETIRED
    assert repo.promoted("telemetry") is None
    got = repo.get("telemetry-v1")
    assert got is not None and got.status is ArtefactStatus.RETIRED


def test_unknown_version_is_named(store: Store) -> None:
    repo = models(store)
    repo.add(ART, FILES)
    with pytest.raises(ArtefactNotFound, match=r"no telemetry model version 7 .*known versions: 1"):
        repo.promote("telemetry", 7)
    with pytest.raises(ArtefactNotFound, match="none stored"):
        repo.retire("flows", 1)


def test_find_by_id_kind_version_or_kind(store: Store) -> None:
    repo = models(store)
    repo.add(ART, FILES)
    repo.add(ART, FILES)
    assert (repo.find("telemetry-v1") or ART).version == 1
    assert (repo.find("telemetry:1") or ART).version == 1
    assert (repo.find("telemetry") or ART).version == 2  # none promoted: the newest
    repo.promote("telemetry", 1)
    assert (repo.find("telemetry") or ART).version == 1
    assert repo.find("flows") is None and repo.find("telemetry:x") is None


def test_organisations_do_not_see_each_other(store: Store) -> None:
    repo = models(store)
    repo.add(ART, FILES)
    repo.promote("telemetry", 1)
    other = models(store.for_org(store.org + "-other"))
    assert other.list() == [] and other.promoted("telemetry") is None
    assert other.files("telemetry-v1") == {}
    assert other.add(ART, FILES).version == 1
