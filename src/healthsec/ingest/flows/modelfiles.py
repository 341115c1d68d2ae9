"""Model directories on disk: JSON, LightGBM text and skops files only; nothing is unpickled."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

SAFE_SUFFIXES = (".json", ".txt", ".skops", ".npz")  # .npz: read with allow_pickle=False only


class ModelDirError(ValueError):
    """The model directory is missing, incomplete or holds a file type we never load."""


def save_model_dir(directory: str | Path, files: Mapping[str, bytes]) -> list[Path]:
    """Write every artifact (names must end in a safe suffix); returns the paths written."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in files.items():
        if not name.endswith(SAFE_SUFFIXES) or "/" in name or name.startswith("."):
            raise ModelDirError(f"refusing to write model file {name!r}: not a safe format")
        path = out / name
        path.write_bytes(data)
        written.append(path)
    return written


def load_model_dir(directory: str | Path, required: tuple[str, ...]) -> dict[str, bytes]:
    """Read the safe-format files of a model directory; names the missing ones if incomplete."""
    d = Path(directory)
    if not d.is_dir():
        raise ModelDirError(f"{d}: model directory not found (train one first)")
    files = {
        p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file() and p.name.endswith(SAFE_SUFFIXES)
    }
    missing = [r for r in required if r not in files]
    if missing:
        raise ModelDirError(f"{d}: not a complete model directory, missing {', '.join(missing)}")
    return files


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
