"""Five members, one poisoned; bad updates excluded with a reason; a member that fails does not stall."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from healthsec.detect.ml.features import FeatureSchema
from healthsec.detect.ml.fedmodels import CLASSIFIER, forward
from healthsec.federated.artefact import FedSpec, schema_hash
from healthsec.federated.client import HospitalClient, Privacy
from healthsec.federated.server import FederationStrategy, FedOptions
from healthsec.federated.simulate import PoisonedClient, run_in_process

from .conftest import member_data


def _run(
    schema: FeatureSchema, members: list[HospitalClient], **kw: Any
) -> tuple[list[np.ndarray], FederationStrategy]:
    opts = FedOptions(rounds=5, min_members=2, **{"secagg": False, **kw})
    spec = FedSpec(dim=len(schema.dense_names))
    strategy = FederationStrategy(spec, schema_hash(schema), opts, len(members))
    return run_in_process(strategy, members, opts).params, strategy


def _bal(schema: FeatureSchema, params: list[np.ndarray], test_set: tuple[np.ndarray, np.ndarray]) -> float:
    spec = FedSpec(dim=len(schema.dense_names))
    x, y = test_set
    return float(balanced_accuracy_score(y, forward(CLASSIFIER, spec.split(params)[CLASSIFIER], x) >= 0.5))


def _members(schema: FeatureSchema, poisoned: bool) -> list[HospitalClient]:
    out: list[HospitalClient] = [
        HospitalClient(
            name=f"h{i}", data=member_data(schema, i), schema=schema, privacy=Privacy(None), seed=i
        )
        for i in range(4)
    ]
    cls = PoisonedClient if poisoned else HospitalClient
    out.append(cls(name="h4", data=member_data(schema, 4), schema=schema, privacy=Privacy(None), seed=4))
    return out


@pytest.mark.parametrize("aggregation", ["trimmed-mean", "median", "krum"])
def test_one_poisoned_member_of_five(aggregation: str, schema: FeatureSchema, test_set: Any) -> None:
    clean = _bal(schema, _run(schema, _members(schema, False))[0], test_set)
    plain = _bal(schema, _run(schema, _members(schema, True))[0], test_set)
    robust = _bal(schema, _run(schema, _members(schema, True), aggregation=aggregation)[0], test_set)
    assert clean > 0.75
    assert plain < 0.9 * clean  # label flipping + scaled update break plain averaging
    assert robust >= 0.95 * clean


@dataclass
class BadClient(HospitalClient):
    mode: str = "nan"

    def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> Any:
        new, n, metrics = super().fit(parameters, config)
        if self.mode == "nan":
            new[0] = new[0].copy()
            new[0][0, 0] = np.nan
        elif self.mode == "shape":
            new[1] = np.zeros(new[1].size + 3)
        else:
            raise ConnectionError("member went away mid-round")
        return new, n, metrics


def test_bad_updates_are_excluded_with_a_reason(
    schema: FeatureSchema, test_set: Any, caplog: pytest.LogCaptureFixture
) -> None:
    members = _members(schema, False)[:3]
    for mode in ("nan", "shape", "drop"):
        members.append(
            BadClient(
                name=f"bad-{mode}",
                data=member_data(schema, 9),
                schema=schema,
                privacy=Privacy(None),
                mode=mode,
            )
        )
    with caplog.at_level(logging.WARNING, logger="healthsec.federated"):
        params, strategy = _run(schema, members)
    text = caplog.text
    assert "excluded update from member bad-nan: array 0 holds 1 NaN/infinite values" in text
    assert "excluded update from member bad-shape: array 1 has shape" in text
    assert "excluded update from member bad-drop" in text and "member went away" in text
    assert _bal(schema, params, test_set) > 0.75  # the three good members still trained the model
    assert strategy.provenance()["members"] == ["h0", "h1", "h2"]


def test_secagg_with_dp_matches_plain_averaging_quality(schema: FeatureSchema, test_set: Any) -> None:
    members = [
        HospitalClient(name=f"h{i}", data=member_data(schema, i), schema=schema, privacy=Privacy(8.0), seed=i)
        for i in range(3)
    ]
    params, strategy = _run(schema, members, secagg=True)
    assert _bal(schema, params, test_set) > 0.75
    eps = strategy.provenance()["record_level_epsilon"]
    assert sorted(eps) == ["h0", "h1", "h2"] and all(0 < e <= 8.0 for e in eps.values())
    # the members' epsilons grow round by round
    assert all(np.all(np.diff(m.epsilons) > 0) and len(m.epsilons) == 5 for m in members)


def test_secagg_survives_a_member_dropping_after_the_key_exchange(
    schema: FeatureSchema, test_set: Any
) -> None:
    members: list[HospitalClient] = [
        HospitalClient(
            name=f"h{i}", data=member_data(schema, i), schema=schema, privacy=Privacy(None), seed=i
        )
        for i in range(3)
    ]
    members.append(
        BadClient(
            name="bad-drop", data=member_data(schema, 7), schema=schema, privacy=Privacy(None), mode="drop"
        )
    )
    params, strategy = _run(schema, members, secagg=True)
    assert _bal(schema, params, test_set) > 0.75
    assert any("bad-drop" in line for line in strategy.provenance()["excluded"])
