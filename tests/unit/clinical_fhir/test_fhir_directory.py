"""Care relationships loaded from the real Synthea bulk export."""

from __future__ import annotations

from pathlib import Path

from healthsec.ingest.fhir import Directory, load_directory


def test_synthea_directory_counts(synthea: Directory) -> None:
    assert len(synthea.patients) == 13
    assert len(synthea.practitioners) == 43
    assert synthea.encounters == 1215
    assert synthea.errors == []
    ctx = synthea.context
    assert sum(len(p) for p in ctx.care.values()) == 57
    # Encounters name practitioners by NPI; the loader resolves them to Practitioner/<id>.
    assert all(u.startswith("Practitioner/") for u in ctx.care)
    some_alias, target = next(iter(ctx.aliases.items()))
    assert some_alias.startswith("http://hl7.org/fhir/sid/us-npi|")
    assert ctx.canonical_user(some_alias) == target
    assert set(ctx.user_roles.values()) >= {"General Practice Physician"}


def test_relationship_lookup(synthea: Directory) -> None:
    ctx = synthea.context
    user, patients = next(iter(ctx.care.items()))
    pid = next(iter(patients))
    assert ctx.has_relationship(user, pid)
    stranger = next(p for p in synthea.patients if p not in patients)
    assert not ctx.has_relationship(user, stranger)


def test_care_team_and_bad_lines(tmp_path: Path) -> None:
    (tmp_path / "CareTeam.ndjson").write_text(
        '{"resourceType":"CareTeam","id":"ct","subject":{"reference":"Patient/p1"},'
        '"participant":[{"member":{"reference":"Practitioner/d1"}}]}\n'
        "garbage\n"
    )
    found = load_directory([tmp_path])
    assert found.care_teams == 1
    assert found.context.has_relationship("Practitioner/d1", "p1")
    assert len(found.errors) == 1
    assert found.errors[0].record == 2


def test_security_labels_mark_vips(tmp_path: Path, synthea: Directory) -> None:
    assert synthea.context.vip_patients == frozenset()  # Synthea carries no such labels
    (tmp_path / "Patient.ndjson").write_text(
        '{"resourceType":"Patient","id":"star","meta":{"security":[{"system":'
        '"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"CELEB"}]}}\n'
        '{"resourceType":"Patient","id":"plain","meta":{"security":[{"code":"N"}]}}\n'
        '{"resourceType":"Patient","id":"locked","meta":{"security":[{"code":"V"}]}}\n'
    )
    found = load_directory([tmp_path])
    assert found.context.vip_patients == frozenset({"star", "locked"})
