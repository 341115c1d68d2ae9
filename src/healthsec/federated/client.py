"""A hospital's side of the federation: local (DP-)SGD on its own rows, masking, and the model it gets back.

``HospitalClient`` is a Flower ``NumPyClient``. Each ``fit`` checks that the coordinator's feature
schema is the member's own (else it refuses), trains the classifier on all rows and the autoencoder on
benign rows from the global weights, with per-example clipping and Gaussian noise calibrated by the
member itself to its own epsilon over the planned rounds, and returns the update (masked when secure
aggregation is on) with the epsilon spent so far. The final ``evaluate`` carries the global model:
the member checks it and writes it as a candidate artefact; promoting it is the member's decision.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from flwr.client import NumPyClient

from healthsec.detect.ml.features import FeatureSchema
from healthsec.detect.ml.fedmodels import (
    AUTOENCODER,
    CLASSIFIER,
    F64,
    TrainConfig,
    check_update,
    forward,
    loss,
    train_local,
)
from healthsec.federated import secagg
from healthsec.federated.artefact import FedSpec, schema_hash, write_artefact
from healthsec.federated.privacy import calibrate, spent

LOG = logging.getLogger("healthsec.federated")


class RefusedError(RuntimeError):
    """The member refuses an instruction from the coordinator (schema or layout mismatch); says why."""


@dataclass
class MemberData:
    """A member's rows in the shared dense encoding; ``y`` = 1 for attack rows."""

    x: F64
    y: F64

    @property
    def benign(self) -> F64:
        out: F64 = self.x[self.y == 0]
        return out


@dataclass
class Privacy:
    """Record-level DP of one member: target epsilon over the whole federation (None = off)."""

    epsilon: float | None = 3.0
    delta: float | None = None  # default 1 / (10 * rows)
    clip: float = 1.0
    # Expected DP-SGD batch: the noise on a step's mean gradient is sigma*C/batch, so a larger batch
    # cuts it (sigma grows more slowly than the batch); the learning rate scales with the batch against
    # the coordinator's recipe (linear scaling: safe here, every per-example gradient is clipped).
    # benchmarks/federated.py, UNSW-NB15 balanced accuracy: eps 8 0.887 -> 0.897, eps 3 0.866 -> 0.892.
    batch: int = 1024
    # The autoencoder's noise multiplier against the classifier's: both models touch the same records and
    # share the one budget, so a scale above 1 leaves more of it to the classifier (set in
    # benchmarks/federated.py --select-dp on a validation split carved from the training rows).
    autoencoder_noise: float = 4.0


@dataclass
class HospitalClient(NumPyClient):  # type: ignore[misc]
    name: str
    data: MemberData
    schema: FeatureSchema
    privacy: Privacy = field(default_factory=Privacy)
    out_dir: Path | None = None  # where the final global model is written as a candidate
    seed: int = 0
    sigma: float | None = None
    parts_done: list[tuple[float, int]] = field(default_factory=list)
    epsilons: list[float] = field(default_factory=list)
    _keys: dict[str, Any] = field(default_factory=dict)
    candidate: Path | None = None

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.hash = schema_hash(self.schema)

    # -- checks -----------------------------------------------------------------------------------
    def _spec(self, config: dict[str, Any]) -> FedSpec:
        if config.get("schema_sha256") != self.hash:
            raise RefusedError(
                f"member {self.name}: coordinator's feature schema {str(config.get('schema_sha256'))[:12]}"
                f" differs from ours {self.hash[:12]}; refused"
            )
        spec = FedSpec.from_dict(json.loads(str(config["spec"])))
        if spec.dim != self.data.x.shape[1]:
            raise RefusedError(
                f"member {self.name}: model input {spec.dim} != our encoding {self.data.x.shape[1]}"
            )
        return spec

    def _delta(self) -> float:
        return self.privacy.delta or 1.0 / (10 * max(1, len(self.data.x)))

    def _noise_scale(self, part: str) -> float:
        return self.privacy.autoencoder_noise if part == AUTOENCODER else 1.0

    def _parts(self, spec: FedSpec, train: TrainConfig, rounds: int) -> list[tuple[float, int, float]]:
        """(sampling rate, steps, noise scale) per model for ``rounds`` rounds of local training."""
        out = []
        for p in spec.parts:
            n = len(self.data.x) if p == CLASSIFIER else len(self.data.benign)
            if n:
                out.append((train.rate(n), train.steps(n) * rounds, self._noise_scale(p)))
        return out

    def _recipe(self, spec: FedSpec) -> TrainConfig:
        """The coordinator's training recipe, under record-level DP with this member's batch and clipping."""
        train = spec.train
        if self.privacy.epsilon is None:
            return train
        scale = self.privacy.batch / train.batch
        return replace(train, batch=self.privacy.batch, lr=train.lr * scale, clip=self.privacy.clip)

    # -- Flower -----------------------------------------------------------------------------------
    def get_properties(self, config: dict[str, Any]) -> dict[str, Any]:
        stage = config.get("stage")
        if stage == "secagg-keys":
            sk, pk = secagg.new_keypair()
            self._keys = {"round": config["round"], "sk": sk}
            return {"pk": pk, "schema_sha256": self.hash}
        if stage == "secagg-unmask":
            if self._keys.get("round") != config["round"] or "pks" not in self._keys:
                raise RefusedError(
                    f"member {self.name}: no secure-aggregation state for round {config['round']}"
                )
            dropped = [int(i) for i in str(config["dropped"]).split(",") if i]
            share = secagg.recovery_share(
                self._keys["index"],
                self._keys["pks"],
                self._keys["sk"],
                self._keys["tag"],
                dropped,
                int(config["size"]),
            )
            return {"share": share.tobytes()}
        return {"member": self.name, "schema_sha256": self.hash, "rows": len(self.data.x)}

    def fit(self, parameters: list[F64], config: dict[str, Any]) -> tuple[list[Any], int, dict[str, Any]]:
        spec = self._spec(config)
        reason = check_update(parameters, spec.shapes())
        if reason:
            raise RefusedError(f"member {self.name}: global model refused: {reason}")
        rounds = int(config["rounds"])
        train = self._recipe(spec)
        if self.privacy.epsilon is not None:
            if self.sigma is None:
                self.sigma = calibrate(self.privacy.epsilon, self._delta(), self._parts(spec, train, rounds))
            train = replace(train, noise_multiplier=self.sigma)
        new = []
        for part, params in spec.split(parameters).items():
            if part == CLASSIFIER:
                new += self._train(CLASSIFIER, params, self.data.x, self.data.y, train)
            else:
                ae = replace(train, noise_multiplier=train.noise_multiplier * self._noise_scale(part))
                new += self._train(AUTOENCODER, params, self.data.benign, None, ae)
        self.parts_done += self._parts(spec, train, 1)
        eps = spent(self.parts_done, self.sigma, self._delta()) if self.sigma else float("inf")
        self.epsilons.append(eps)
        metrics: dict[str, Any] = {
            "member": self.name,
            "epsilon": eps if self.privacy.epsilon is not None else -1.0,
            "delta": self._delta(),
            "sigma": self.sigma or 0.0,
            "w": 1,  # a constant key, as Flower's DP wrappers expect one in every reply
        }
        n = len(self.data.x)
        if "secagg_pks" in config:
            self._keys.update(
                index=int(config["secagg_index"]), pks=config["secagg_pks"], tag=config["secagg_tag"]
            )
            if self._keys.get("round") != config["server_round"]:
                raise RefusedError(
                    f"member {self.name}: masking keys are not from round {config['server_round']}"
                )
            weight = min(n, int(config["secagg_max_weight"])) / int(config["secagg_max_weight"])
            masked = secagg.mask_update(
                new,
                weight,
                self._keys["index"],
                self._keys["pks"],
                self._keys["sk"],
                self._keys["tag"],
                float(config["secagg_clip"]),
                self.rng,
            )
            return [masked], n, metrics
        return new, n, metrics

    def _train(self, kind: str, params: list[F64], x: F64, y: F64 | None, train: Any) -> list[F64]:
        return train_local(kind, params, x, y, train, self.rng)

    def evaluate(self, parameters: list[F64], config: dict[str, Any]) -> tuple[float, int, dict[str, Any]]:
        """The global model arrives here: check it, score it on our rows, keep it as a candidate."""
        spec = self._spec(config)
        reason = check_update(parameters, spec.shapes())
        if reason:
            raise RefusedError(f"member {self.name}: global model refused: {reason}")
        parts = spec.split(parameters)
        metrics: dict[str, Any] = {"member": self.name}
        value = 0.0
        if CLASSIFIER in parts and len(self.data.x):
            value = loss(CLASSIFIER, parts[CLASSIFIER], self.data.x, self.data.y)
            pred = forward(CLASSIFIER, parts[CLASSIFIER], self.data.x) >= 0.5
            metrics["local_accuracy"] = float((pred == (self.data.y == 1)).mean())
        if self.out_dir is not None and config.get("final"):
            prov = json.loads(str(config.get("provenance", "{}")))
            prov["member"] = self.name
            prov["member_epsilon"] = self.epsilons[-1] if self.epsilons and self.privacy.epsilon else None
            prov["member_epsilon_per_round"] = self.epsilons if self.privacy.epsilon else []
            prov["member_delta"] = self._delta() if self.privacy.epsilon else None
            prov["member_dp"] = (
                {
                    "accountant": "pld",
                    "sigma": self.sigma,
                    "autoencoder_noise": self.privacy.autoencoder_noise,
                    "clip": self.privacy.clip,
                    "batch": self.privacy.batch,
                }
                if self.privacy.epsilon
                else None
            )
            prov["member_rows"] = len(self.data.x)
            write_artefact(self.out_dir, parameters, spec, self.schema, prov)
            self.candidate = self.out_dir
            LOG.info("member %s: candidate global model written to %s", self.name, self.out_dir)
        return value, len(self.data.x), metrics
