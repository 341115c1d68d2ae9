"""Optional native code for our own LightGBM models: lleaves compiles the model text with LLVM.

Without lleaves (the ``native`` extra) or when compiling fails, callers keep LightGBM's own predict;
both give the same numbers (within 1e-9, tested). Compiling costs 10-60 s per model on this machine,
so a compiled model can be kept in a cache directory the caller names. A cached object file is
machine code: it is only ever loaded from a directory that this user owns and nobody else can
write to, under a name that is the SHA-256 of the model text it was compiled from (with the lleaves,
llvmlite and CPU it was compiled for). A model file from a partner is compiled here, never loaded as
code; a cache file is never taken from outside.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from healthsec.detect.ml.features import F64

Predict = Callable[[F64], F64]
_COMPILED: dict[str, Any] = {}  # model key -> compiled lleaves model, for this process


def _private(path: Path) -> bool:
    """Owned by this user and writable by nobody else (a planted file could run as code)."""
    try:
        st = path.lstat()
    except OSError:
        return False
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid():
        return False
    return not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def model_key(model_text: str, raw_score: bool) -> str:
    """What a compiled object depends on: the model text, the output kind, compiler and CPU."""
    from importlib.metadata import version

    import llvmlite
    import llvmlite.binding as llvm

    parts = [
        model_text,
        f"raw={raw_score}",
        f"lleaves={version('lleaves')}",
        f"llvmlite={llvmlite.__version__}",
        llvm.get_host_cpu_name(),
        llvm.get_host_cpu_features().flatten(),
    ]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def compile_forest(model_text: str, *, raw_score: bool, cache_dir: Path | None = None) -> Predict | None:
    """A native predict for a LightGBM model text (LightGBM's output, or raw scores), or None when
    lleaves is not installed or cannot compile it. ``cache_dir``: keep and reuse compiled objects there
    (created private; ignored, and nothing written, if it is not private)."""
    try:
        import lleaves

        key = model_key(model_text, raw_score)
    except Exception:  # lleaves or a working llvmlite missing: LightGBM's predict stays
        return None
    model = _COMPILED.get(key)
    if model is None:
        cache: Path | None = None
        if cache_dir is not None:
            with contextlib.suppress(OSError):
                cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if _private(cache_dir):
                cache = cache_dir / f"lgb-{key}.o"
                if cache.exists() and not _private(cache):
                    cache = None  # not ours: neither loaded nor overwritten
        try:
            with tempfile.TemporaryDirectory(prefix="healthsec-lgb-") as tmp:
                src = Path(tmp) / "model.txt"
                src.write_text(model_text)
                model = lleaves.Model(model_file=str(src))
                model.compile(cache=None if cache is None else str(cache), raw_score=raw_score)
        except Exception:
            return None
        if cache is not None and cache.exists():
            cache.chmod(0o600)
        _COMPILED[key] = model

    def predict(x: F64) -> F64:
        out: F64 = np.asarray(model.predict(np.ascontiguousarray(x, dtype=np.float64), n_jobs=1))
        return out

    return predict
