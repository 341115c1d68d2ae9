"""The attack generators: every attack is named, mapped to ATT&CK, marked synthetic, and writable to disk."""

from __future__ import annotations

from pathlib import Path

from healthsec.ingest.hl7 import HL7FileSource
from healthsec.model import ClinicalMessage
from healthsec.testing import dicom_attacks, hl7_attacks


def test_every_hl7_attack_is_marked_synthetic(shared_data: Path) -> None:
    carrier = shared_data / "hl7v2-fhir-samples-cdc" / "examples" / "Epic" / "001_Epic_ORM_O01.hl7"
    text = str(next(iter(HL7FileSource([carrier]).read())).fields["text"])  # type: ignore[union-attr]
    attacks = hl7_attacks.generate([text], per_attack=1, seed=1)
    assert {a.name for a in attacks} == set(hl7_attacks.ATTACKS)
    for a in attacks:
        assert a.techniques and a.description and a.messages
        for msg in a.messages:
            control = msg.split("\r", 1)[0].split("|")[9]
            assert control.startswith("SYN"), (a.name, control)


def test_generator_commands_write_files(shared_data: Path, tmp_path: Path) -> None:
    carrier = shared_data / "hl7v2-fhir-samples-cdc" / "examples" / "Epic" / "001_Epic_ORM_O01.hl7"
    assert hl7_attacks.main([str(tmp_path / "a.hl7"), str(carrier), "--attack", "sql-injection"]) == 0
    events = [e for e in HL7FileSource([tmp_path / "a.hl7"]).read() if isinstance(e, ClinicalMessage)]
    assert len(events) == 1 and str(events[0].fields["control_id"]).startswith("SYNSQL")
    ct = shared_data / "dicom-samples" / "pydicom_test_files" / "CT_small.dcm"
    assert dicom_attacks.main([str(tmp_path / "d"), str(ct), "--attack", "pe-polyglot"]) == 0
    assert (tmp_path / "d" / "CT_small.pe-polyglot.dcm").read_bytes()[:2] == b"MZ"


def test_generator_names_a_missing_carrier_in_one_line(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """The documented generator given a path that is not there: one error line and exit 2, no traceback."""
    import pytest

    with pytest.raises(SystemExit) as exc:
        hl7_attacks.main([str(tmp_path / "out.hl7"), str(tmp_path / "missing.hl7")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "missing.hl7: cannot read (No such file or directory)" in err and "Traceback" not in err
