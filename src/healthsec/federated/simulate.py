"""In-process federation: the same FederationServer, FederationStrategy and HospitalClient, no sockets.

Used by the benchmark and the robustness tests. Flower's own simulation needs ray; this drives Flower's
``Server.fit`` loop through in-process client proxies instead, so aggregation, secure aggregation,
exclusion and DP are exactly the code the real coordinator runs. ``PoisonedClient`` is a member that
attacks: it flips its labels and scales its update away from the global model.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.common import (
    Code,
    DisconnectRes,
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    GetParametersIns,
    GetParametersRes,
    GetPropertiesIns,
    GetPropertiesRes,
    Parameters,
    ReconnectIns,
    Status,
)
from flwr.server.client_proxy import ClientProxy

from healthsec.detect.ml.fedmodels import F64
from healthsec.federated.client import HospitalClient, MemberData
from healthsec.federated.server import (
    FederationServer,
    FederationStrategy,
    FedOptions,
    TimedClientManager,
    global_params,
)

LOG = logging.getLogger("healthsec.federated")


def _size(p: Parameters) -> int:
    return sum(len(t) for t in p.tensors)


class InProcessProxy(ClientProxy):  # type: ignore[misc]
    """A ClientProxy that calls a member object directly and counts the bytes each way."""

    def __init__(self, cid: str, member: HospitalClient) -> None:
        super().__init__(cid)
        self.member = member
        self.client = member.to_client()
        self.bytes_down = 0
        self.bytes_up = 0
        self.fits = 0

    def get_properties(
        self, ins: GetPropertiesIns, timeout: float | None, group_id: int | None
    ) -> GetPropertiesRes:
        res = self.client.get_properties(ins)
        self.bytes_up += sum(len(v) for v in res.properties.values() if isinstance(v, bytes))
        return res

    def get_parameters(
        self, ins: GetParametersIns, timeout: float | None, group_id: int | None
    ) -> GetParametersRes:
        return self.client.get_parameters(ins)

    def fit(self, ins: FitIns, timeout: float | None, group_id: int | None) -> FitRes:
        self.bytes_down += _size(ins.parameters) + sum(
            len(v) for v in ins.config.values() if isinstance(v, bytes)
        )
        res = self.client.fit(ins)
        self.bytes_up += _size(res.parameters)
        self.fits += 1
        return res

    def evaluate(self, ins: EvaluateIns, timeout: float | None, group_id: int | None) -> EvaluateRes:
        return self.client.evaluate(ins)

    def reconnect(self, ins: ReconnectIns, timeout: float | None, group_id: int | None) -> DisconnectRes:
        return DisconnectRes(reason="in-process")


@dataclass
class PoisonedClient(HospitalClient):
    """Flips its labels and sends ``global + scale * (local - global)``."""

    scale: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.data = MemberData(self.data.x, 1.0 - self.data.y)

    def _train(self, kind: str, params: list[F64], x: F64, y: F64 | None, train: Any) -> list[F64]:
        new = super()._train(kind, params, x, y, train)
        return [p + self.scale * (n - p) for p, n in zip(params, new, strict=True)]


@dataclass
class RunResult:
    params: list[F64]
    seconds: float
    bytes_per_member_round: float
    provenance: dict[str, Any]
    epsilons: dict[str, list[float]]


def run_in_process(
    strategy: FederationStrategy, members: list[HospitalClient], opts: FedOptions
) -> RunResult:
    """Run ``opts.rounds`` rounds over ``members``; returns the global model and what it cost."""
    manager = TimedClientManager(wait=1.0, strategy=strategy)
    proxies = []
    for i, m in enumerate(members):
        p = InProcessProxy(f"m{i}", m)
        strategy.names[p.cid] = m.name
        manager.register(p)
        proxies.append(p)
    server = FederationServer(manager, strategy)
    t0 = time.perf_counter()
    server.fit(num_rounds=opts.rounds, timeout=opts.round_timeout)
    seconds = time.perf_counter() - t0
    fits = sum(p.fits for p in proxies) or 1
    per = sum(p.bytes_down + p.bytes_up for p in proxies) / fits
    return RunResult(
        params=global_params(server),
        seconds=seconds,
        bytes_per_member_round=float(per),
        provenance=strategy.provenance(),
        epsilons={m.name: list(m.epsilons) for m in members},
    )


def status_ok() -> Status:
    return Status(code=Code.OK, message="ok")


def flatten_metrics(values: dict[str, list[float]]) -> dict[str, float]:
    return {k: float(np.max(v)) for k, v in values.items() if v}
