"""Learnt baselines as stored state: refused with one line when they do not fit, exact when they do."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import skops.io as sio

from healthsec.detect.ml.netflow_baseline import FlowAnomalyDetector
from healthsec.detect.ml.unsupervised import UnsafeModelError
from healthsec.detect.registry import REGISTRY, DetectorContext
from healthsec.model import Flow
from healthsec.sim import simulate

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def _flows(n: int, seed: int) -> list[Flow]:
    rnd = random.Random(seed)
    return [
        Flow(
            id=f"f{seed}-{i}",
            ts=T0 + timedelta(seconds=30 * i),
            source="t",
            src_ip=f"10.0.0.{rnd.randint(2, 9)}",
            dst_ip="10.0.1.5",
            src_port=40000 + i,
            dst_port=rnd.choice((443, 443, 2575)),
            protocol="tcp",
            bytes_out=rnd.randint(200, 4000),
            bytes_in=rnd.randint(200, 9000),
            duration=rnd.random() * 3,
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def iforest_state() -> dict[str, Any]:
    det = FlowAnomalyDetector(seed=1)
    det.fit(_flows(300, 1))
    state = det.to_dict()
    assert state is not None
    return orjson.loads(orjson.dumps(state))  # what the store gives back


class Smuggled:  # a type no trusted-types list names
    pass


def test_iforest_state_of_other_features_is_refused(iforest_state: dict[str, Any]) -> None:
    bad = {**iforest_state, "features": ["log_bytes_out"]}
    with pytest.raises(ValueError, match=r"baseline features \['log_bytes_out'\] are not"):
        FlowAnomalyDetector().load_dict(bad)


def test_iforest_state_holding_an_untrusted_type_is_not_loaded(iforest_state: dict[str, Any]) -> None:
    bad = {**iforest_state, "iforest_skops": base64.b64encode(sio.dumps(Smuggled())).decode()}
    with pytest.raises(UnsafeModelError, match="flow-iforest baseline: refuses to load untrusted types"):
        FlowAnomalyDetector().load_dict(bad)


def test_iforest_state_of_another_detector_is_refused(iforest_state: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="baseline is for detector 'hl7', not 'flow-iforest'"):
        FlowAnomalyDetector().load_dict({**iforest_state, "detector": "hl7"})


def test_a_loaded_iforest_scores_as_the_fitted_one(iforest_state: dict[str, Any]) -> None:
    fitted = FlowAnomalyDetector(seed=1)
    fitted.fit(_flows(300, 1))
    loaded = FlowAnomalyDetector(seed=1)
    loaded.load_dict(iforest_state)
    probe = _flows(200, 2)
    assert fitted.score_many(probe).tolist() == loaded.score_many(probe).tolist()


@pytest.mark.parametrize("name", ["clinical.access", "clinical.telemetry", "dicom"])
def test_merged_clinical_baselines_round_trip(name: str) -> None:
    base = simulate(3, day=0, campaigns=())
    day = simulate(3, day=1, hospital=base.hospital)
    spec = next(s for s in REGISTRY if s.name == name)
    assert spec.factory is not None
    ctx = DetectorContext(assets=tuple(base.assets), seed=3)
    fitted, loaded = spec.factory(ctx), spec.factory(ctx)
    fitted.fit([e for e in base.events if e.kind in spec.kinds])
    state = fitted.to_dict()  # type: ignore[attr-defined]
    loaded.load_dict(orjson.loads(orjson.dumps(state)))  # type: ignore[attr-defined]
    mine = [e for e in day.events if e.kind in spec.kinds]
    expected = [a.id for a in fitted.detect(mine)]
    assert expected, f"{name} raised nothing on the attack day"
    assert [a.id for a in loaded.detect(mine)] == expected
    wrong_parts = {**state, "parts": {"x": {}}}
    with pytest.raises(ValueError, match="baseline parts"):
        spec.factory(ctx).load_dict(wrong_parts)  # type: ignore[attr-defined]
