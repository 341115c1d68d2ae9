"""The federated model's layout (``FedSpec``) and its artefact: ``model.npz`` + ``metadata.json``, no pickle.

``write_artefact(dir, ...)`` writes the candidate a member receives; ``read_artefact`` loads it back
(``allow_pickle=False``); ``check_candidate`` refuses one whose feature schema is not the member's own
before the member registers it in its model store (kind ``flows-federated``, see ``detect/ml/fedflow``),
where promoting it is the member's own decision (``healthsec models promote``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from healthsec.detect.ml.features import FeatureSchema
from healthsec.detect.ml.fedflow import FILES, FORMAT, FederatedFlowModel, FederatedModelError, schema_hash
from healthsec.detect.ml.fedmodels import (
    AUTOENCODER,
    CLASSIFIER,
    F64,
    Params,
    TrainConfig,
    check_update,
    shapes,
)

__all__ = ["FORMAT", "ArtefactError", "FedSpec", "check_candidate", "read_artefact", "schema_hash"]


class ArtefactError(ValueError):
    """An artefact is missing, malformed, or its schema is not the member's own; says which and why."""


@dataclass(frozen=True)
class FedSpec:
    """Which models are federated, their sizes and the local training recipe, shared by all members."""

    dim: int
    parts: tuple[str, ...] = (CLASSIFIER, AUTOENCODER)
    hidden: Mapping[str, int] = field(default_factory=lambda: {CLASSIFIER: 32, AUTOENCODER: 16})
    train: TrainConfig = field(default_factory=TrainConfig)

    def shapes(self) -> list[tuple[int, ...]]:
        out: list[tuple[int, ...]] = []
        for p in self.parts:
            out += shapes(p, self.dim, self.hidden[p])
        return out

    def split(self, params: Sequence[F64]) -> dict[str, Params]:
        out, i = {}, 0
        for p in self.parts:
            out[p] = list(params[i : i + 4])
            i += 4
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "parts": list(self.parts),
            "hidden": dict(self.hidden),
            "train": asdict(self.train),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FedSpec:
        return cls(
            dim=int(d["dim"]),
            parts=tuple(d["parts"]),
            hidden={k: int(v) for k, v in d["hidden"].items()},
            train=TrainConfig(**d["train"]),
        )


def write_artefact(
    directory: str | Path,
    params: Sequence[F64],
    spec: FedSpec,
    schema: FeatureSchema,
    provenance: Mapping[str, Any],
) -> Path:
    """Write ``model.npz`` (one array per parameter, no pickle), ``schema.json`` and ``metadata.json``.

    ``provenance`` holds rounds, members, aggregation, privacy budget; returns the metadata path.
    """
    reason = check_update(list(params), spec.shapes())
    if reason:
        raise ArtefactError(f"global model does not fit its layout: {reason}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {f"p{i:02d}": np.asarray(p, dtype=np.float64) for i, p in enumerate(params)}
    np.savez(out / "model.npz", allow_pickle=False, **arrays)  # type: ignore[arg-type]
    (out / "schema.json").write_text(json.dumps(schema.to_dict(), indent=1))
    digest = hashlib.sha256((out / "model.npz").read_bytes()).hexdigest()
    meta = {
        "format": FORMAT,
        "kind": "federated-flow-model",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "spec": spec.to_dict(),
        "schema_sha256": schema_hash(schema),
        "model_sha256": digest,
        "provenance": dict(provenance),
    }
    path = out / "metadata.json"
    path.write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
    return path


def read_artefact(directory: str | Path) -> tuple[list[F64], FedSpec, FeatureSchema, dict[str, Any]]:
    """Load and check an artefact (digests, layout, finite values) with the loader workers use."""
    base = Path(directory)
    try:
        files = {name: (base / name).read_bytes() for name in FILES}
        model = FederatedFlowModel.from_artifacts(files)
    except OSError as exc:
        raise ArtefactError(f"{base}: not a readable federated artefact: {exc}") from exc
    except FederatedModelError as exc:
        raise ArtefactError(f"{base}: {exc}") from exc
    spec = FedSpec.from_dict(model.metadata["spec"])
    params = [a for part in spec.parts for a in model.parts[part]]
    return params, spec, model.schema, model.metadata


def check_candidate(candidate: str | Path, own_schema: FeatureSchema) -> dict[str, Any]:
    """The candidate's metadata if it is intact and its schema is the member's own; ArtefactError if not."""
    _, _, schema, meta = read_artefact(candidate)
    if schema_hash(schema) != schema_hash(own_schema):
        raise ArtefactError(
            f"{candidate}: the global model's feature schema ({schema_hash(schema)[:12]}) differs from this"
            f" member's ({schema_hash(own_schema)[:12]}); refused"
        )
    return meta
