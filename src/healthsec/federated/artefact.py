"""The federated model's layout (``FedSpec``) and its artefact: ``model.npz`` + ``metadata.json``, no pickle.

``write_artefact(dir, ...)`` is the one entry point a model store can call to register a federated
model; ``read_artefact`` loads it back (``allow_pickle=False``) and ``promote`` copies a candidate into
a member's model directory only if its feature schema is the member's own.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from healthsec.detect.ml.features import FeatureSchema
from healthsec.detect.ml.fedmodels import (
    AUTOENCODER,
    CLASSIFIER,
    F64,
    Params,
    TrainConfig,
    check_update,
    shapes,
)

FORMAT = "healthsec-federated-v1"


class ArtefactError(ValueError):
    """An artefact is missing, malformed, or its schema is not the member's own; says which and why."""


def schema_hash(schema: FeatureSchema) -> str:
    """sha256 of the schema's canonical JSON: members and the global model must agree on it exactly."""
    blob = json.dumps(schema.to_dict(), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


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
        "promoted": False,
    }
    path = out / "metadata.json"
    path.write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
    return path


def read_artefact(directory: str | Path) -> tuple[list[F64], FedSpec, FeatureSchema, dict[str, Any]]:
    """Load and check an artefact: digest, layout, finite values; never unpickles."""
    base = Path(directory)
    try:
        meta = json.loads((base / "metadata.json").read_text())
        schema = FeatureSchema.from_dict(json.loads((base / "schema.json").read_text()))
        raw = (base / "model.npz").read_bytes()
    except (OSError, ValueError, KeyError) as exc:
        raise ArtefactError(f"{base}: not a readable federated artefact: {exc}") from exc
    if meta.get("format") != FORMAT:
        raise ArtefactError(f"{base}/metadata.json: format {meta.get('format')!r}, expected {FORMAT}")
    if hashlib.sha256(raw).hexdigest() != meta.get("model_sha256"):
        raise ArtefactError(f"{base}/model.npz: digest differs from metadata.json (file changed?)")
    if schema_hash(schema) != meta.get("schema_sha256"):
        raise ArtefactError(f"{base}/schema.json: digest differs from metadata.json")
    spec = FedSpec.from_dict(meta["spec"])
    with np.load(base / "model.npz", allow_pickle=False) as npz:
        params = [np.asarray(npz[k], dtype=np.float64) for k in sorted(npz.files)]
    reason = check_update(params, spec.shapes())
    if reason:
        raise ArtefactError(f"{base}/model.npz: {reason}")
    return params, spec, schema, meta


def promote(candidate: str | Path, own_schema: FeatureSchema, target: str | Path, who: str) -> Path:
    """Copy a checked candidate into ``target`` if its schema is the member's own; record the decision."""
    params, spec, schema, meta = read_artefact(candidate)
    if schema_hash(schema) != schema_hash(own_schema):
        raise ArtefactError(
            f"{candidate}: the global model's feature schema ({schema_hash(schema)[:12]}) differs from this"
            f" member's ({schema_hash(own_schema)[:12]}); refused"
        )
    dest = Path(target)
    if dest.exists():
        shutil.rmtree(dest)
    write_artefact(dest, params, spec, schema, meta["provenance"])
    meta_path = dest / "metadata.json"
    new_meta = json.loads(meta_path.read_text())
    new_meta["promoted"] = True
    new_meta["promoted_by"] = who
    new_meta["promoted_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    new_meta["candidate_sha256"] = meta["model_sha256"]
    meta_path.write_text(json.dumps(new_meta, indent=1, sort_keys=True, default=str))
    return dest
