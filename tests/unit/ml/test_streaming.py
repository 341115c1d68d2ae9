"""Gated Half-Space Trees: adapts to a baseline, does not learn flagged flows, scoring is read-only."""

from __future__ import annotations

from datetime import UTC, datetime

from healthsec.detect.ml.streaming import StreamingFlowDetector
from healthsec.model import Flow


def _flow(i: int, size: float, port: int = 443) -> Flow:
    return Flow(
        id=f"f{i}",
        ts=datetime(2026, 1, 1, tzinfo=UTC),
        source="test",
        src_ip="10.0.0.1",
        dst_ip="10.0.0.2",
        dst_port=port,
        features={"bytes": size, "packets": size / 100, "port": float(port), "proto": "tcp"},
    )


def test_outliers_score_high_and_are_not_learned() -> None:
    det = StreamingFlowDetector(window_size=50, seed=1)
    for i in range(400):
        det.learn_one(_flow(i, 1000 + (i % 7) * 10))
    normal = det.score_one(_flow(1000, 1030))
    odd = _flow(1001, 5e8, port=4444)
    before = det.score_one(odd)
    assert det.gate is not None and before > normal and before >= det.gate > normal
    skipped = det.skipped
    det.learn_one(odd)
    assert det.skipped == skipped + 1  # gated: the flagged flow did not train the baseline
    assert det.score_one(odd) == before  # scoring and refused learning leave state unchanged


def test_warm_up_scores_zero_then_typed_fields_work() -> None:
    det = StreamingFlowDetector(window_size=10)

    def plain(i: int) -> Flow:
        return Flow(
            id=f"p{i}",
            ts=datetime(2026, 1, 1, tzinfo=UTC),
            source="t",
            src_ip=None,
            dst_ip=None,
            bytes_out=10 + i,
            bytes_in=20 * i,
            duration=None,
        )

    assert det.process_one(plain(1)) == 0.0
    assert det.score_one(plain(1)) == 0.0  # still warming up
    for i in range(20):
        det.process_one(plain(i))
    assert det.gate is not None
    assert 0.0 <= det.score_one(plain(5)) < det.score_one(plain(10**6)) <= 1.0
