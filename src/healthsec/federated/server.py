"""The coordinator's side: Flower's server loop with checked updates, robust aggregation and secure sums.

``FederationStrategy`` wraps one of Flower's strategies (FedAvg, FedTrimmedAvg, FedMedian, Krum,
optionally inside ``DifferentialPrivacyServerSideFixedClipping`` for member-level DP), adds the shared
configuration to every instruction, and drops from a round any update of the wrong shape or with
NaN/infinity, logging the member and the reason. ``FederationServer`` is Flower's ``Server`` with a
secure-aggregation round (keys, masked fit, drop-out recovery) when secure aggregation is on.
``TimedClientManager`` waits a bounded time for the minimum number of members instead of a day.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flwr.common import (
    Code,
    EvaluateIns,
    FitIns,
    FitRes,
    GetPropertiesIns,
    Parameters,
    Scalar,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server import Server
from flwr.server.client_manager import ClientManager, SimpleClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import (
    DifferentialPrivacyServerSideFixedClipping,
    FedAvg,
    FedMedian,
    FedTrimmedAvg,
    Krum,
    Strategy,
)

from healthsec.detect.ml.fedmodels import F64, check_update, init_params
from healthsec.federated import secagg
from healthsec.federated.artefact import FedSpec
from healthsec.federated.transport import current_member

LOG = logging.getLogger("healthsec.federated")
AGGREGATIONS = ("fedavg", "trimmed-mean", "median", "krum")


@dataclass
class FedOptions:
    """What the coordinator runs: rounds, members, aggregation and the privacy settings it enforces."""

    rounds: int = 10
    min_members: int = 2
    aggregation: str = "fedavg"
    secagg: bool = True
    secagg_clip: float = 8.0  # |weighted parameter| above this is clipped before quantization
    secagg_max_weight: int = 1_000_000  # must be >= the largest member's row count
    member_dp_noise: float = 0.0  # member-level DP (server-side fixed clipping); 0 = off
    member_dp_clip: float = 1.0
    round_timeout: float | None = 300.0
    trim_beta: float = 0.2
    krum_malicious: int = 1
    seed: int = 0
    log: list[str] = field(default_factory=list)


def base_strategy(opts: FedOptions, initial: Parameters, expected_members: int) -> Strategy:
    common: dict[str, Any] = {
        "fraction_fit": 1.0,
        "fraction_evaluate": 1.0,
        "min_fit_clients": opts.min_members,
        "min_evaluate_clients": opts.min_members,
        "min_available_clients": opts.min_members,
        "initial_parameters": initial,
        "accept_failures": True,
    }
    if opts.aggregation == "fedavg":
        strat: Strategy = FedAvg(**common)
    elif opts.aggregation == "trimmed-mean":
        strat = FedTrimmedAvg(beta=opts.trim_beta, **common)
    elif opts.aggregation == "median":
        strat = FedMedian(**common)
    elif opts.aggregation == "krum":
        strat = Krum(num_malicious_clients=opts.krum_malicious, **common)
    else:
        raise ValueError(f"aggregation {opts.aggregation!r}: choose one of {', '.join(AGGREGATIONS)}")
    if opts.member_dp_noise > 0:
        if opts.secagg:
            raise ValueError(
                "member-level DP with server-side clipping needs each update: turn secure aggregation off"
            )
        strat = DifferentialPrivacyServerSideFixedClipping(
            strat, opts.member_dp_noise, opts.member_dp_clip, max(1, expected_members)
        )
    return strat


class FederationStrategy(Strategy):  # type: ignore[misc]
    """Shared config in every instruction, bad updates excluded with a logged reason, then the base rule."""

    def __init__(self, spec: FedSpec, schema_sha256: str, opts: FedOptions, expected_members: int) -> None:
        super().__init__()
        self.spec, self.schema_sha256, self.opts = spec, schema_sha256, opts
        init = []
        for i, part in enumerate(spec.parts):
            init += init_params(part, spec.dim, spec.hidden[part], seed=opts.seed + i)
        self.initial = ndarrays_to_parameters(init)
        self.base = base_strategy(opts, self.initial, expected_members)
        self.names: dict[str, str] = {}  # Flower client id -> member name (from its certificate)
        self.members_seen: set[str] = set()
        self.epsilons: dict[str, list[float]] = {}
        self.excluded: list[str] = []
        self.lock = threading.Lock()

    def name_of(self, client: ClientProxy) -> str:
        return self.names.get(client.cid, client.cid[:8])

    def config(self, server_round: int) -> dict[str, Scalar]:
        return {
            "schema_sha256": self.schema_sha256,
            "spec": json.dumps(self.spec.to_dict()),
            "rounds": self.opts.rounds,
            "server_round": server_round,
        }

    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        return self.base.initialize_parameters(client_manager)

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        out = self.base.configure_fit(server_round, parameters, client_manager)
        return [(c, FitIns(ins.parameters, {**ins.config, **self.config(server_round)})) for c, ins in out]

    def check(
        self, server_round: int, results: list[tuple[ClientProxy, FitRes]]
    ) -> list[tuple[ClientProxy, FitRes]]:
        good = []
        for client, res in results:
            name = self.name_of(client)
            try:
                arrays = parameters_to_ndarrays(res.parameters)
                reason = check_update(arrays, self.spec.shapes())
            except Exception as exc:
                reason = f"unreadable parameters ({exc.__class__.__name__})"
            if reason is None and res.num_examples <= 0:
                reason = f"num_examples {res.num_examples}"
            if reason:
                self.exclude(server_round, name, reason)
                continue
            self.note(name, res.metrics)
            good.append((client, res))
        return good

    def exclude(self, server_round: int, name: str, reason: str) -> None:
        msg = f"round {server_round}: excluded update from member {name}: {reason}"
        LOG.warning(msg)
        with self.lock:
            self.excluded.append(msg)

    def note(self, name: str, metrics: dict[str, Scalar]) -> None:
        with self.lock:
            self.members_seen.add(name)
            eps = metrics.get("epsilon")
            if isinstance(eps, int | float) and eps >= 0:
                self.epsilons.setdefault(name, []).append(float(eps))

    def aggregate_fit(
        self, server_round: int, results: list[tuple[ClientProxy, FitRes]], failures: list[Any]
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        for f in failures:
            self.exclude(server_round, self.name_of(f[0]) if isinstance(f, tuple) else "?", _failure(f))
        good = self.check(server_round, results)
        if len(good) < self.opts.min_members:
            LOG.warning(
                "round %s: %s usable updates < minimum %s; model unchanged",
                server_round,
                len(good),
                self.opts.min_members,
            )
            return None, {}
        return self.base.aggregate_fit(server_round, good, [])

    def configure_evaluate(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, EvaluateIns]]:
        if server_round != self.opts.rounds:
            return []
        clients = client_manager.all().values()
        cfg = {**self.config(server_round), "final": True, "provenance": json.dumps(self.provenance())}
        return [(c, EvaluateIns(parameters, cfg)) for c in clients]

    def aggregate_evaluate(
        self, server_round: int, results: list[Any], failures: list[Any]
    ) -> tuple[float | None, dict[str, Scalar]]:
        for f in failures:
            LOG.warning(
                "final model not delivered to %s: %s",
                self.name_of(f[0]) if isinstance(f, tuple) else "?",
                _failure(f),
            )
        return None, {"delivered": len(results)}

    def evaluate(self, server_round: int, parameters: Parameters) -> tuple[float, dict[str, Scalar]] | None:
        return None

    def provenance(self) -> dict[str, Any]:
        return {
            "rounds": self.opts.rounds,
            "members": sorted(self.members_seen),
            "aggregation": self.opts.aggregation,
            "secure_aggregation": self.opts.secagg,
            "member_level_dp": {
                "noise_multiplier": self.opts.member_dp_noise,
                "clip": self.opts.member_dp_clip,
            }
            if self.opts.member_dp_noise
            else None,
            "record_level_epsilon": {m: e[-1] for m, e in self.epsilons.items() if e},
            "excluded": list(self.excluded),
        }


def _failure(f: Any) -> str:
    if isinstance(f, tuple) and isinstance(f[1], BaseException):
        f = f[1]
    if isinstance(f, BaseException):
        return f"{f.__class__.__name__}: {f}"[:300]
    _, res = f
    status = getattr(res, "status", None)
    return f"member reported {getattr(status, 'message', 'an error')}"[:300]


class TimedClientManager(SimpleClientManager):  # type: ignore[misc]
    """Waits at most ``wait`` s for the minimum number of members; names members from their certificates."""

    def __init__(self, wait: float, strategy: FederationStrategy | None = None) -> None:
        super().__init__()
        self.wait, self.strategy = wait, strategy

    def register(self, client: ClientProxy) -> bool:
        name = current_member()
        if self.strategy is not None and name:
            self.strategy.names[client.cid] = name
        return bool(super().register(client))

    def sample(
        self, num_clients: int, min_num_clients: int | None = None, criterion: Any = None
    ) -> list[ClientProxy]:
        need = min_num_clients if min_num_clients is not None else num_clients
        if not self.wait_for(need, timeout=int(self.wait)):
            LOG.warning(
                "only %s of the %s members needed are connected after %ss",
                self.num_available(),
                need,
                self.wait,
            )
            return []
        available = list(self.clients.values())
        return available if num_clients >= len(available) else available[:num_clients]


class FederationServer(Server):  # type: ignore[misc]
    """Flower's server loop; with secure aggregation the coordinator only ever unmasks the sum."""

    def __init__(self, client_manager: ClientManager, strategy: FederationStrategy) -> None:
        super().__init__(client_manager=client_manager, strategy=strategy)
        self.fed = strategy
        self.set_max_workers(None)

    def fit_round(self, server_round: int, timeout: float | None) -> Any:
        ins = self.fed.configure_fit(server_round, self.parameters, self._client_manager)
        if not self.fed.opts.secagg:
            results, failures = _fit_all(ins, timeout, server_round)
            params, metrics = self.fed.aggregate_fit(server_round, results, failures)
            return params, metrics, (results, failures)
        if len(ins) < self.fed.opts.min_members:
            LOG.warning("round %s: too few members for secure aggregation", server_round)
            return None
        keyed = _parallel(
            ins,
            lambda c, _i: c.get_properties(
                GetPropertiesIns({"stage": "secagg-keys", "round": server_round}), timeout, server_round
            ),
        )
        live = [
            (c, i, r)
            for (c, i), r in zip(ins, keyed, strict=True)
            if not isinstance(r, BaseException) and r.properties.get("pk")
        ]
        for (c, _), r in zip(ins, keyed, strict=True):
            if isinstance(r, BaseException) or not r.properties.get("pk"):
                self.fed.exclude(
                    server_round, self.fed.name_of(c), "no masking key (dropped before the round)"
                )
        if len(live) < self.fed.opts.min_members:
            return None
        blob = b"".join(bytes(r.properties["pk"]) for _, _, r in live)
        tag = os.urandom(16)
        size = sum(int(np.prod(s)) for s in self.fed.spec.shapes()) + 1
        fit_ins = [
            (
                c,
                FitIns(
                    i.parameters,
                    {
                        **i.config,
                        "secagg_pks": blob,
                        "secagg_index": k,
                        "secagg_tag": tag,
                        "secagg_clip": self.fed.opts.secagg_clip,
                        "secagg_max_weight": self.fed.opts.secagg_max_weight,
                    },
                ),
            )
            for k, (c, i, _) in enumerate(live)
        ]
        results, failures = _fit_all(fit_ins, timeout, server_round)
        index = {c.cid: k for k, (c, _, _) in enumerate(live)}
        masked: dict[int, Any] = {}
        for client, res in results:
            arrays = parameters_to_ndarrays(res.parameters)
            if len(arrays) != 1 or arrays[0].dtype != np.uint64 or arrays[0].size != size:
                self.fed.exclude(
                    server_round, self.fed.name_of(client), f"masked update is not {size} uint64 values"
                )
                continue
            masked[index[client.cid]] = (client, res, arrays[0])
            self.fed.note(self.fed.name_of(client), res.metrics)
        for f in failures:
            self.fed.exclude(
                server_round, self.fed.name_of(f[0]) if isinstance(f, tuple) else "?", _failure(f)
            )
        dropped = [k for k in range(len(live)) if k not in masked]
        if len(masked) < self.fed.opts.min_members:
            LOG.warning("round %s: %s masked updates < minimum; model unchanged", server_round, len(masked))
            return None
        shares = []
        if dropped:
            cfg = {
                "stage": "secagg-unmask",
                "round": server_round,
                "dropped": ",".join(map(str, dropped)),
                "size": size,
            }
            survivors = [(masked[k][0], None) for k in sorted(masked)]
            got = _parallel(
                survivors, lambda c, _i: c.get_properties(GetPropertiesIns(cfg), timeout, server_round)
            )
            if any(isinstance(g, BaseException) for g in got):
                LOG.warning("round %s: a survivor failed during mask recovery; model unchanged", server_round)
                return None
            shares = [np.frombuffer(bytes(g.properties["share"]), dtype=np.uint64) for g in got]
            LOG.info("round %s: removed masks of %s dropped member(s)", server_round, len(dropped))
        try:
            total, weight = secagg.unmask_sum(
                [masked[k][2] for k in sorted(masked)], shares, len(masked), self.fed.opts.secagg_clip
            )
        except secagg.SecAggError as exc:
            LOG.warning("round %s: %s; model unchanged", server_round, exc)
            return None
        if weight <= 0 or not np.all(np.isfinite(total)):
            LOG.warning("round %s: aggregate unusable; model unchanged", server_round)
            return None
        params = secagg.unflatten(total / weight, self.fed.spec.shapes())
        return ndarrays_to_parameters(params), {}, (results, failures)


def _fit_all(
    ins: list[tuple[ClientProxy, FitIns]], timeout: float | None, group: int
) -> tuple[list[Any], list[Any]]:
    """Like Flower's ``fit_clients``, but a failure keeps its member: ``(client, exception or FitRes)``."""
    got = _parallel(ins, lambda c, i: c.fit(i, timeout, group))
    results, failures = [], []
    for (client, _), res in zip(ins, got, strict=True):
        if isinstance(res, BaseException) or res.status.code != Code.OK:
            failures.append((client, res))
        else:
            results.append((client, res))
    return results, failures


def _parallel(items: list[tuple[ClientProxy, Any]], fn: Any) -> list[Any]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(items))) as pool:
        futs = [pool.submit(fn, c, i) for c, i in items]
        out = []
        for f in futs:
            try:
                out.append(f.result())
            except Exception as exc:
                out.append(exc)
        return out


def global_params(server: Server) -> list[F64]:
    return [np.asarray(a, dtype=np.float64) for a in parameters_to_ndarrays(server.parameters)]
