"""The project's conformance kits: FlowFileSource obeys the Source rules, FlowEnsemble the detector rules."""

from __future__ import annotations

from pathlib import Path

from healthsec.detect.ml.ensemble import FlowEnsemble
from healthsec.ingest.flows import FlowFileSource, FlowTable, flows_from_table
from healthsec.testing.kits import check_detector, check_source


def test_flow_file_source_conforms(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("dur,bytes,proto,label\n1,10,tcp,benign\n2,20\n3,30,udp,attack\n")
    events, errors = check_source(lambda: FlowFileSource(str(p), "csv", "label"))
    assert len(events) == 2 and [e.record for e in errors] == [3]


def test_flow_ensemble_conforms(kdd_train: FlowTable, kdd_test: FlowTable) -> None:
    assert kdd_train.labels is not None
    benign_rows = [i for i, lab in enumerate(kdd_train.labels) if lab == "benign"][:1500]
    seed_rows = benign_rows[:300]
    baseline = list(flows_from_table(kdd_train, indices=benign_rows))
    events = list(flows_from_table(kdd_test, 0, 400))

    def make() -> FlowEnsemble:
        return FlowEnsemble.train(kdd_train.frame[seed_rows], kdd_train.categorical, None, fpr=0.05)

    alerts = check_detector(make, baseline, events)
    assert 0 < len(alerts) < len(events)
