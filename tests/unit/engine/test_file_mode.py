"""File mode: the CLI's scan and detect commands run the one engine, restricted to the file's detectors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from tests.unit.engine.test_engine import Fragile, PortRule, flow
from typer.testing import CliRunner

from healthsec.config import Settings
from healthsec.detect.registry import DetectorContext, spec_for
from healthsec.engine import Engine
from healthsec.pipeline import DetectorChoiceError, file_engine


def test_prime_fits_learning_detectors_on_the_baseline_and_scan_runs_the_file_as_one_step() -> None:
    learner = PortRule()
    learner.name = "learner"
    engine = Engine([spec_for(learner, needs="learning")], DetectorContext(), learning=timedelta(days=1))
    engine.prime([flow(0, 1), flow(1, 2)])
    assert learner.fitted_on == ["f0", "f1"]
    assert engine.status()[0].state == "running"
    # three hours of events, far inside what would be the learning day: one step, every alert
    step = engine.scan([flow(2, 10, 104), flow(3, 130, 104), flow(4, 170)])
    assert sorted(a.id for a in step.alerts) == ["al-f2", "al-f3"]
    assert engine.scan([]).alerts == []


def test_prime_without_a_baseline_runs_learning_detectors_unfitted_and_leaves_prepared_ones_alone() -> None:
    fresh, loaded = PortRule(), PortRule()
    loaded.name = "loaded"
    engine = Engine(
        [spec_for(fresh, needs="learning"), spec_for(loaded, needs="learning")], DetectorContext()
    )
    engine.prime([flow(0, 1)], prepared=["loaded"])
    assert fresh.fitted_on == ["f0"] and loaded.fitted_on is None
    engine2 = Engine([spec_for(PortRule(), needs="learning")], DetectorContext())
    engine2.prime()
    assert [a.id for a in engine2.scan([flow(5, 1, 104)]).alerts] == ["al-f5"]


def test_scan_isolates_a_failing_detector() -> None:
    engine = Engine([spec_for(Fragile())], DetectorContext())
    step = engine.scan([flow(1, 1, 104), flow(2, 2, 104)])
    assert [(f.detector, f.event_id) for f in step.failures] == [("fragile", "f2")]
    assert [a.id for a in step.alerts] == ["al-f1"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(db=str(tmp_path / "x.db"), sigma_rules=[])


def test_file_engine_refuses_unknown_names_other_kinds_and_models_without_a_model(settings: Settings) -> None:
    with pytest.raises(DetectorChoiceError, match="no-such"):
        file_engine(["no-such"], {"clinical"}, settings=settings)
    with pytest.raises(
        DetectorChoiceError, match="detector sigma reads log events, this input holds clinical"
    ):
        file_engine(["sigma"], {"clinical"}, settings=settings)
    with pytest.raises(DetectorChoiceError, match="flow-ensemble needs a trained model"):
        file_engine(["flow-ensemble"], {"flow"}, settings=settings)
    with pytest.raises(DetectorChoiceError, match="no Sigma rules"):
        file_engine(["sigma"], {"log"}, settings=settings)


def test_file_engine_runs_the_registered_detectors_and_enriches_their_alerts(
    settings: Settings, shared_data: Path, tmp_path: Path
) -> None:
    from healthsec.ingest.dicom import DicomFileSource
    from healthsec.model import ClinicalMessage
    from healthsec.testing.dicom_attacks import pe_polyglot

    src = shared_data / "dicom-samples" / "pydicom_test_files" / "CT_small.dcm"
    (tmp_path / "invoice.dcm").write_bytes(pe_polyglot(src.read_bytes()))
    engine = file_engine(["dicom", "hl7"], {"clinical"}, settings=settings)
    assert [(s.name, s.state) for s in engine.status()] == [("hl7", "running"), ("dicom", "running")]
    events = [e for e in DicomFileSource([tmp_path / "invoice.dcm"]).read() if isinstance(e, ClinicalMessage)]
    step = engine.scan(events)
    assert step.alerts and all(a.detector.startswith("dicom") for a in step.alerts)
    # tactics come from the pinned ATT&CK copy (names, as the service stores them)
    assert all(a.tactics and all(not t.startswith("TA") for t in a.tactics) for a in step.alerts)
    assert step.incidents, "the engine also correlates a file's alerts"


def test_a_scan_command_with_a_detector_of_other_events_fails_naming_it(tmp_path: Path) -> None:
    from healthsec.cli import app

    f = tmp_path / "a.hl7"
    f.write_text("MSH|^~\\&|A|B|C|D|20260101000000||ADT^A01|1|P|2.5\r")
    res = CliRunner().invoke(
        app,
        ["scan", "hl7", str(f), "--detectors", "flow-beacon", "--no-store", "--db", str(tmp_path / "d.db")],
    )
    assert res.exit_code == 1
    assert "detector flow-beacon reads flow events, this input holds clinical" in res.output
