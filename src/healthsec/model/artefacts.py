"""Model artefacts as managed, versioned objects: what was trained, on what, how well, and its state.

A ``ModelArtefact`` is the metadata of one trained model (a flow ensemble, a device identifier, a
telemetry classifier); its files (JSON, LightGBM text, skops; never pickle) travel beside it. Pure:
no I/O, no framework.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from healthsec.model.common import ensure_utc

SCHEMA_VERSION = 1
# File suffix -> the safe format it holds. Nothing else is ever stored or loaded. numpy's .npz is read
# with allow_pickle=False only (plain numeric arrays: the federated model's weights).
SAFE_FORMATS: dict[str, str] = {
    ".json": "json",
    ".txt": "lightgbm-text",
    ".skops": "skops",
    ".npz": "numpy-npz",
}
_KIND = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class ArtefactStatus(StrEnum):
    """candidate: stored, not in service; promoted: the one in service for its kind; retired: taken out."""

    CANDIDATE = "candidate"
    PROMOTED = "promoted"
    RETIRED = "retired"


class ArtefactError(ValueError):
    """Artefact metadata that cannot be right; the message names the field and the reason."""


def features_hash(names: Iterable[str]) -> str:
    """SHA-256 of the ordered feature names (a changed order is a changed schema)."""
    return hashlib.sha256("\x1f".join(names).encode()).hexdigest()


def format_of(file_name: str) -> str:
    """The safe format of a file by its suffix; ArtefactError for any other file."""
    for suffix, fmt in SAFE_FORMATS.items():
        if file_name.endswith(suffix) and _FILE.match(file_name):
            return fmt
    raise ArtefactError(
        f"file {file_name!r} is not a safe model format (json, LightGBM text, skops, numpy npz)"
    )


def fingerprint(digests: Iterable[str]) -> str:
    """The training-data fingerprint: SHA-256 over the sorted SHA-256 digests of the training inputs.

    Sorted so that the same files given in another order (or from another path) give the same value.
    """
    return hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelArtefact:
    """Metadata of one trained model; ``version`` is 0 until the store numbers it (monotonic per kind)."""

    kind: str  # what it scores: flows, devices, telemetry
    name: str  # the model's own name, e.g. flow-ensemble
    version: int
    format_version: int  # version of the kind's file layout; the loader refuses one it does not read
    features: tuple[str, ...]  # ordered feature names the model expects
    features_hash: str
    files: Mapping[str, str]  # file name -> SHA-256 of its bytes
    training_fingerprint: str
    created_at: datetime
    metrics: Mapping[str, float] = field(default_factory=dict)
    evaluation: str | None = None  # which split ``metrics`` were measured on, in words
    libraries: Mapping[str, str] = field(default_factory=dict)
    status: ArtefactStatus = ArtefactStatus.CANDIDATE
    provenance: Mapping[str, Any] = field(default_factory=dict)  # free-form (federated rounds, ...)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not _KIND.match(self.kind):
            raise ArtefactError(f"kind {self.kind!r}: lower-case letters, digits and '-' only")
        if not self.name or len(self.name) > 128:
            raise ArtefactError("name must be 1 to 128 characters")
        if self.version < 0 or self.format_version < 1:
            raise ArtefactError(f"{self.kind}: version must be >= 0 and format_version >= 1")
        if self.features_hash != features_hash(self.features):
            raise ArtefactError(f"{self.kind}: features_hash does not match the feature names")
        if not self.files:
            raise ArtefactError(f"{self.kind}: an artefact needs at least one file")
        for name, digest in self.files.items():
            format_of(name)
            if not _HEX64.match(digest):
                raise ArtefactError(f"{self.kind}: file {name!r} has no SHA-256 digest")
        if not _HEX64.match(self.training_fingerprint):
            raise ArtefactError(f"{self.kind}: training_fingerprint must be a SHA-256 hex digest")
        object.__setattr__(self, "created_at", ensure_utc(self.created_at))
        object.__setattr__(self, "status", ArtefactStatus(self.status))

    @property
    def id(self) -> str:
        """Unique within an organisation: ``flows-v3``."""
        return f"{self.kind}-v{self.version}"

    @property
    def formats(self) -> tuple[str, ...]:
        """The safe formats its files use (json, lightgbm-text, skops), sorted."""
        return tuple(sorted({format_of(n) for n in self.files}))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ISO 8601 UTC)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "status": self.status.value,
            "formats": list(self.formats),
            "format_version": self.format_version,
            "features": list(self.features),
            "features_hash": self.features_hash,
            "files": dict(self.files),
            "training_fingerprint": self.training_fingerprint,
            "created_at": self.created_at.isoformat(),
            "metrics": dict(self.metrics),
            "evaluation": self.evaluation,
            "libraries": dict(self.libraries),
            "provenance": dict(self.provenance),
            "schema_version": self.schema_version,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelArtefact:
        """Inverse of :meth:`to_dict`; unknown or missing keys are refused by name."""
        derived = {"id", "formats"}
        known = {f for f in cls.__dataclass_fields__} | derived
        unknown = sorted(set(data) - known)
        if unknown:
            raise ArtefactError(f"unknown artefact field(s): {', '.join(unknown)}")
        try:
            return cls(
                kind=str(data["kind"]),
                name=str(data["name"]),
                version=int(data["version"]),
                format_version=int(data["format_version"]),
                features=tuple(str(f) for f in data["features"]),
                features_hash=str(data["features_hash"]),
                files={str(k): str(v) for k, v in data["files"].items()},
                training_fingerprint=str(data["training_fingerprint"]),
                created_at=datetime.fromisoformat(str(data["created_at"])),
                metrics={str(k): float(v) for k, v in data.get("metrics", {}).items()},
                evaluation=data.get("evaluation"),
                libraries={str(k): str(v) for k, v in data.get("libraries", {}).items()},
                status=ArtefactStatus(data.get("status", ArtefactStatus.CANDIDATE)),
                provenance=dict(data.get("provenance", {})),
                schema_version=int(data.get("schema_version", SCHEMA_VERSION)),
            )
        except KeyError as exc:
            raise ArtefactError(f"artefact metadata lacks field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ArtefactError):
                raise
            raise ArtefactError(f"artefact metadata is malformed: {exc}") from None
