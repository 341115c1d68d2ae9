"""Use case: register what ``healthsec train ...`` wrote as a versioned candidate model artefact."""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from healthsec.detect.artefacts_load import belongs_to, describe, format_version
from healthsec.model.artefacts import ModelArtefact, features_hash, fingerprint
from healthsec.store import Store
from healthsec.store.models import models

LIBRARIES = ("healthsec", "numpy", "polars", "scikit-learn", "lightgbm", "skops", "river")


def library_versions() -> dict[str, str]:
    """Versions of the libraries a saved model depends on (those installed), and Python's."""
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return out


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _card_metrics(files: Mapping[str, bytes]) -> tuple[dict[str, float], str | None]:
    """Metrics the model card already holds (the flow ensemble's validation split), else none."""
    import json

    raw = files.get("model_card.json")
    if raw is None:
        return {}, None
    try:
        card = json.loads(raw)
    except ValueError:
        return {}, None
    metrics = {
        str(k): float(v)
        for k, v in (card.get("validation_metrics") or {}).items()
        if isinstance(v, int | float) and v == v  # NaN is not a figure
    }
    if isinstance(card.get("validation_benign_fpr"), int | float):
        metrics["validation_benign_fpr"] = float(card["validation_benign_fpr"])
    return metrics, card.get("validation") if metrics else None


def build_artefact(
    kind: str,
    files: Mapping[str, bytes],
    inputs: Sequence[str | Path],
    *,
    metrics: Mapping[str, float] | None = None,
    evaluation: str | None = None,
    provenance: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> ModelArtefact:
    """The metadata of a freshly trained model (version 0: the store numbers it)."""
    name, features = describe(kind, files)
    paths = [Path(p) for p in inputs]
    hashed = [(p, _sha256_file(p)) for p in paths if p.is_file()]
    digests = [d for _, d in hashed]
    card_metrics, card_eval = _card_metrics(files)
    return ModelArtefact(
        kind=kind,
        name=name,
        version=0,
        format_version=format_version(kind),
        features=features,
        features_hash=features_hash(features),
        files={n: hashlib.sha256(b).hexdigest() for n, b in files.items()},
        training_fingerprint=fingerprint(digests),
        created_at=now or datetime.now(UTC),
        metrics=dict(metrics if metrics is not None else card_metrics),
        evaluation=evaluation if metrics is not None else card_eval,
        libraries=library_versions(),
        provenance={
            "trained_by": "healthsec train " + kind,
            "training_inputs": [{"file": p.name, "sha256": d} for p, d in hashed],
            **dict(provenance or {}),
        },
    )


def register_trained(
    store: Store,
    kind: str,
    model_dir: Path,
    inputs: Sequence[str | Path],
    *,
    promote: bool = False,
    actor: str = "cli",
    metrics: Mapping[str, float] | None = None,
    evaluation: str | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> ModelArtefact:
    """Store the model directory ``healthsec train <kind>`` (or ``healthsec federate join``) just wrote as
    a candidate (and promote it). ``metrics``/``evaluation`` default to the model card's;
    ``provenance`` is added to the artefact's (federated: rounds, members, epsilon).

    Raises ArtefactRefused when the directory is not a complete model of that kind; ModelDirError
    when it holds no model files.
    """
    from healthsec.ingest.flows.modelfiles import load_model_dir
    from healthsec.services.models import promote_model

    files = {n: b for n, b in load_model_dir(model_dir, ()).items() if belongs_to(kind, n)}
    artefact = build_artefact(
        kind, files, inputs, metrics=metrics, evaluation=evaluation, provenance=provenance
    )
    repo = models(store)
    stored = repo.add(artefact, files)
    store.audit.record(actor, "model.register", stored.id, kind=kind, version=stored.version)
    if promote:
        stored = promote_model(store, kind, stored.version, actor=actor)
    return stored
