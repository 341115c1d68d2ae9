"""Turn a model artefact's bytes into a ready, scoring object; refuse it in one line when it does not fit.

Pure given the bytes (no I/O): the store hands over the metadata and the files, this module checks
every file's digest, the kind's file-layout version and the feature schema, then builds the model
through the existing safe loaders (LightGBM text, JSON, skops with its trusted-types list). Heavy
libraries are imported only when a model is really loaded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from healthsec.model.artefacts import ArtefactError, ModelArtefact, features_hash, format_of

# kind -> (the model's name, the file-layout version this code reads, files it cannot do without)
KINDS: dict[str, tuple[str, int, tuple[str, ...]]] = {
    "flows": ("flow-ensemble", 1, ("schema.json", "ensemble.json")),
    "devices": ("device-identifier", 1, ("devices.json", "capture_rf.skops")),
    "telemetry": ("telemetry-classifier", 2, ("meta.json", "model.txt")),
    "flows-federated": ("federated-flow-model", 1, ("schema.json", "model.npz", "metadata.json")),
}
# The files each kind writes (a model directory reused for another training may hold stale others).
_FILES: dict[str, tuple[str, ...]] = {
    "flows": (
        "schema.json",
        "ensemble.json",
        "model_card.json",
        "stream_warmup.json",
        "binary.lgb.txt",
        "category.lgb.txt",
        "iforest.skops",
        "autoencoder.skops",
    ),
    "devices": ("devices.json", "capture_rf.skops", "flow_rf.skops", "model_card.json"),
    "telemetry": ("meta.json", "model.txt", "types.txt", "model_card.json"),
    "flows-federated": ("schema.json", "model.npz", "metadata.json"),
}


def belongs_to(kind: str, file_name: str) -> bool:
    """Whether ``file_name`` is one of the files a model of ``kind`` is made of."""
    return file_name in _FILES.get(kind, ())


class ArtefactRefused(ValueError):
    """An artefact this code will not put in service; ``str()`` is one line naming it and the reason."""

    def __init__(self, label: str, reason: str) -> None:
        super().__init__(f"model artefact {label} refused: {reason}")
        self.label = label
        self.reason = reason


@dataclass(frozen=True)
class LoadedModel:
    """A promoted artefact's metadata and its ready model (FlowEnsemble, DeviceIdentifier or
    TelemetryClassifier, by kind)."""

    artefact: ModelArtefact
    model: Any

    @property
    def kind(self) -> str:
        return self.artefact.kind


def label_of(artefact: ModelArtefact) -> str:
    """How a refusal names an artefact: ``flows-v3 (flow-ensemble)``."""
    return f"{artefact.id} ({artefact.name})"


def format_version(kind: str) -> int:
    """The file-layout version this code writes and reads for ``kind``."""
    return _spec(kind, kind)[1]


def _spec(kind: str, label: str) -> tuple[str, int, tuple[str, ...]]:
    spec = KINDS.get(kind)
    if spec is None:
        raise ArtefactRefused(label, f"unknown kind {kind!r} (this code loads {', '.join(KINDS)})")
    return spec


def _json(files: Mapping[str, bytes], name: str, label: str) -> Any:
    try:
        return json.loads(files[name])
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArtefactRefused(label, f"{name} is not valid JSON ({exc})") from None


def describe(kind: str, files: Mapping[str, bytes]) -> tuple[str, tuple[str, ...]]:
    """(model name, ordered feature names) read from a model directory's files, for registration.

    Raises ArtefactRefused when a required file is missing or unreadable.
    """
    name, _, required = _spec(kind, kind)
    missing = [r for r in required if r not in files]
    if missing:
        raise ArtefactRefused(kind, f"missing file(s) {', '.join(missing)}")
    return name, _features(kind, files, kind)


def _features(kind: str, files: Mapping[str, bytes], label: str) -> tuple[str, ...]:
    try:
        if kind in ("flows", "flows-federated"):
            schema = _json(files, "schema.json", label)
            return (*map(str, schema["numeric"]), *map(str, schema["categorical"]))
        if kind == "devices":
            return tuple(str(f) for f in _json(files, "devices.json", label)["flow_stats"])
        return tuple(str(f) for f in _json(files, "meta.json", label)["features"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise ArtefactRefused(
            label, f"its feature list cannot be read ({type(exc).__name__}: {exc})"
        ) from None


def check_files(artefact: ModelArtefact, files: Mapping[str, bytes]) -> None:
    """Every recorded file present, unaltered (SHA-256) and of a safe format; nothing extra."""
    label = label_of(artefact)
    missing = sorted(set(artefact.files) - set(files))
    extra = sorted(set(files) - set(artefact.files))
    if missing:
        raise ArtefactRefused(label, f"file(s) {', '.join(missing)} missing from the store")
    if extra:
        raise ArtefactRefused(label, f"unrecorded file(s) {', '.join(extra)}")
    for name, digest in sorted(artefact.files.items()):
        try:
            format_of(name)
        except ArtefactError as exc:
            raise ArtefactRefused(label, str(exc)) from None
        if hashlib.sha256(files[name]).hexdigest() != digest:
            raise ArtefactRefused(label, f"file {name} does not match its recorded SHA-256 (corrupted)")


def load_artefact(
    artefact: ModelArtefact,
    files: Mapping[str, bytes],
    *,
    available_features: Collection[str] | None = None,
) -> LoadedModel:
    """Check and load one artefact; raise ArtefactRefused (one line naming it) when it does not fit.

    Refused: an unknown kind, a file-layout (format) version other than the one this code reads,
    a missing/altered/unsafe file, a feature schema that differs from the metadata (names, order or
    hash) or from what the code computes (devices), and, when ``available_features`` is given, a
    model that needs features the caller's events do not carry.
    """
    label = label_of(artefact)
    _, fmt_version, required = _spec(artefact.kind, label)
    if artefact.format_version != fmt_version:
        raise ArtefactRefused(
            label, f"format version {artefact.format_version}, this code reads version {fmt_version}"
        )
    check_files(artefact, files)
    missing = [r for r in required if r not in files]
    if missing:
        raise ArtefactRefused(label, f"missing file(s) {', '.join(missing)}")
    features = _features(artefact.kind, files, label)
    if features != artefact.features or features_hash(features) != artefact.features_hash:
        raise ArtefactRefused(label, _schema_diff(artefact.features, features))
    if available_features is not None:
        absent = [f for f in features if f not in available_features]
        if absent:
            shown = ", ".join(absent[:8]) + (" ..." if len(absent) > 8 else "")
            raise ArtefactRefused(label, f"needs {len(absent)} feature(s) the events do not carry: {shown}")
    model = _build(artefact.kind, files, label)
    return LoadedModel(artefact, model)


def _schema_diff(recorded: tuple[str, ...], found: tuple[str, ...]) -> str:
    lost = [f for f in recorded if f not in found]
    new = [f for f in found if f not in recorded]
    if not lost and not new:
        return "feature schema mismatch: same features in another order"
    parts = []
    if lost:
        parts.append(f"recorded but absent {', '.join(lost[:5])}")
    if new:
        parts.append(f"present but not recorded {', '.join(new[:5])}")
    return "feature schema mismatch: " + "; ".join(parts)


def _build(kind: str, files: Mapping[str, bytes], label: str) -> Any:
    """Deserialise through the model's own safe loader; any failure becomes one refusal line."""
    try:
        if kind == "flows":
            from healthsec.detect.ml.ensemble import FlowEnsemble

            return FlowEnsemble.from_artifacts(files)
        if kind == "flows-federated":
            from healthsec.detect.ml.fedflow import FederatedFlowModel

            return FederatedFlowModel.from_artifacts(files)
        if kind == "devices":
            from healthsec.detect.ml.devices import FLOW_STATS, DeviceIdentifier

            ident = DeviceIdentifier.from_artifacts(files)
            expected = tuple(_json(files, "devices.json", label)["flow_stats"])
            if expected != FLOW_STATS:
                raise ArtefactRefused(
                    label, "feature schema mismatch: flow statistics differ from this code's"
                )
            return ident
        from healthsec.detect.clinical.telemetry_model import FORMAT_VERSION, TelemetryClassifier

        meta = _json(files, "meta.json", label)
        if meta.get("version") != FORMAT_VERSION:
            raise ArtefactRefused(
                label, f"meta.json version {meta.get('version')}, this code reads {FORMAT_VERSION}"
            )
        types = files.get("types.txt")
        return TelemetryClassifier.from_parts(
            files["meta.json"].decode(), files["model.txt"].decode(), types.decode() if types else None
        )
    except ArtefactRefused:
        raise
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtefactRefused(label, f"cannot be read ({type(exc).__name__}: {reason[:200]})") from None
