"""The federated flow model in service: the global classifier and autoencoder ``healthsec federate`` trained.

A member registers the global model it received as a model artefact of kind ``flows-federated``
(``model.npz`` loaded with ``allow_pickle=False``, ``schema.json``, ``metadata.json``); once the member
promotes it (``healthsec models promote flows-federated N``), workers load it through this class and
score Flow events with it. Pure given the bytes: no I/O, no Flower.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from healthsec.detect.ml.features import F64, FeatureSchema, flow_entities, frame_from_flows
from healthsec.detect.ml.fedmodels import (
    AUTOENCODER,
    CLASSIFIER,
    anomaly_score,
    check_update,
    forward,
    shapes,
)
from healthsec.model import Alert, Event, Flow, Severity, stable_id

FORMAT = "healthsec-federated-v1"
KIND = "flows-federated"
FILES = ("schema.json", "model.npz", "metadata.json")


class FederatedModelError(ValueError):
    """Bytes that are not a federated flow model; the message says which file and why."""


def schema_hash(schema: FeatureSchema) -> str:
    """sha256 of the schema's canonical JSON: members and the global model must agree on it exactly."""
    blob = json.dumps(schema.to_dict(), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def layout(spec: Mapping[str, Any]) -> list[tuple[int, ...]]:
    """Parameter shapes of a ``FedSpec`` dictionary (its parts in order, four arrays each)."""
    out: list[tuple[int, ...]] = []
    for part in spec["parts"]:
        out += shapes(str(part), int(spec["dim"]), int(spec["hidden"][part]))
    return out


def read_arrays(raw: bytes) -> list[F64]:
    """The parameters from ``model.npz`` bytes, in name order; never unpickles."""
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        return [np.asarray(npz[k], dtype=np.float64) for k in sorted(npz.files)]


class FederatedFlowModel:
    """Global federated model scoring flows: the classifier flags, the autoencoder's error is evidence."""

    name = "flow-federated"
    version = "1.0"

    def __init__(
        self, schema: FeatureSchema, parts: Mapping[str, list[F64]], metadata: Mapping[str, Any]
    ) -> None:
        if CLASSIFIER not in parts:
            raise FederatedModelError("metadata.json: the federated model has no classifier part")
        self.schema = schema
        self.parts = dict(parts)
        self.metadata = dict(metadata)

    @classmethod
    def from_artifacts(cls, files: Mapping[str, bytes]) -> FederatedFlowModel:
        """Check digests, layout and finiteness, then build; FederatedModelError names the fault."""
        try:
            meta = json.loads(files["metadata.json"])
            schema = FeatureSchema.from_dict(json.loads(files["schema.json"]))
            raw = files["model.npz"]
        except KeyError as exc:
            raise FederatedModelError(f"missing file {exc.args[0]}") from None
        except (ValueError, TypeError, AttributeError) as exc:
            raise FederatedModelError(f"metadata.json or schema.json unreadable: {exc}") from None
        if meta.get("format") != FORMAT:
            raise FederatedModelError(f"metadata.json: format {meta.get('format')!r}, expected {FORMAT}")
        if hashlib.sha256(raw).hexdigest() != meta.get("model_sha256"):
            raise FederatedModelError("model.npz: digest differs from metadata.json (file changed?)")
        if schema_hash(schema) != meta.get("schema_sha256"):
            raise FederatedModelError("schema.json: digest differs from metadata.json")
        try:
            params = read_arrays(raw)
            expected = layout(meta["spec"])
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise FederatedModelError(f"model.npz or its layout unreadable: {exc}") from None
        reason = check_update(params, expected)
        if reason:
            raise FederatedModelError(f"model.npz: {reason}")
        if expected[0][0] != len(schema.dense_names):
            raise FederatedModelError(
                f"model.npz: {expected[0][0]} inputs, the schema encodes {len(schema.dense_names)}"
            )
        parts = {p: params[4 * i : 4 * i + 4] for i, p in enumerate(meta["spec"]["parts"])}
        return cls(schema, parts, meta)

    def score(self, x: F64) -> tuple[F64, F64 | None]:
        """(attack probability, autoencoder reconstruction error or None) per scaled row."""
        ae = self.parts.get(AUTOENCODER)
        return forward(CLASSIFIER, self.parts[CLASSIFIER], x), (
            anomaly_score(ae, x) if ae is not None else None
        )

    # --- AlertingDetector protocol over typed events -------------------------------------------
    def fit(self, events: Iterable[Event]) -> None:
        """Nothing: the federation trained it; a benign day seen by the pipeline must not change it."""
        del events

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        flows = [e for e in events if isinstance(e, Flow)]
        if not flows:
            return []
        frame = frame_from_flows(flows, self.schema.columns, list(self.schema.categorical))
        prob, err = self.score(self.schema.scaled(frame))
        rounds = self.metadata.get("provenance", {}).get("rounds")
        alerts = []
        for i in np.flatnonzero(prob >= 0.5):
            flow, p = flows[int(i)], float(prob[i])
            feats: dict[str, float | str | None] = {"attack_probability": round(p, 4)}
            if err is not None:
                feats["reconstruction_error"] = round(float(err[i]), 4)
            alerts.append(
                Alert(
                    id=stable_id("alert", self.name, flow.id),
                    ts=flow.ts,
                    detector=self.name,
                    detector_version=self.version,
                    title="Network flow flagged as an attack by the federated model",
                    score=p,
                    severity=Severity.HIGH if p >= 0.9 else Severity.MEDIUM if p >= 0.75 else Severity.LOW,
                    explanation=(
                        f"The consortium's federated classifier ({rounds} rounds) gives this flow an attack"
                        f" probability of {p:.2f}."
                    ),
                    evidence=(flow.id,),
                    entities=flow_entities(flow),
                    techniques=(),
                    tactics=(),
                    features=feats,
                )
            )
        return alerts
