"""Small numpy models that federate well: a flow classifier MLP and a benign-traffic autoencoder, with DP-SGD.

Pure maths, no I/O. A model is a list of float64 arrays (``W1, b1, W2, b2``) so that it travels through
Flower as plain ndarrays and averages coordinate-wise. Training is (DP-)SGD with per-example gradient
clipping and Gaussian noise (Abadi et al. 2016): per-example norms are computed in closed form (the
norm of an outer product is the product of norms), so no per-example gradient tensor is materialised.
LightGBM is not used here: boosted trees have no parameter vector to average, so federating them needs
a histogram protocol and DP on split statistics, which is a different and much larger piece of work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
Params = list[F64]

CLASSIFIER = "classifier"
AUTOENCODER = "autoencoder"


@dataclass(frozen=True)
class TrainConfig:
    """Local training of one member in one round. ``noise_multiplier`` 0 and ``clip`` 0 = plain SGD."""

    epochs: float = 2.0  # expected passes over the member's rows (Poisson-sampled steps)
    batch: int = 256  # expected batch size (sampling rate q = batch / rows)
    lr: float = 1.0
    clip: float = 0.0  # per-example L2 clipping bound C (0 = no clipping)
    noise_multiplier: float = 0.0  # sigma: Gaussian noise std = sigma * C on the summed gradient

    def steps(self, rows: int) -> int:
        return max(1, round(self.epochs * rows / max(1, min(self.batch, rows))))

    def rate(self, rows: int) -> float:
        return min(1.0, self.batch / max(1, rows))


def shapes(kind: str, dim: int, hidden: int) -> list[tuple[int, ...]]:
    """Parameter shapes of a model: classifier dim->hidden->1, autoencoder dim->hidden->dim."""
    out = 1 if kind == CLASSIFIER else dim
    return [(dim, hidden), (hidden,), (hidden, out), (out,)]


def init_params(kind: str, dim: int, hidden: int, seed: int = 0) -> Params:
    """He/Glorot-style random initial weights, zero biases (every member starts from the global copy)."""
    rng = np.random.default_rng(seed)
    w1, b1, w2, b2 = shapes(kind, dim, hidden)
    return [
        rng.normal(0.0, np.sqrt(2.0 / dim), w1),
        np.zeros(b1),
        rng.normal(0.0, np.sqrt(1.0 / hidden), w2),
        np.zeros(b2),
    ]


def _act(kind: str, z: F64) -> tuple[F64, F64]:
    if kind == CLASSIFIER:
        return np.maximum(z, 0.0), (z > 0).astype(np.float64)
    a = np.tanh(z)
    return a, 1.0 - a * a


def forward(kind: str, params: Sequence[F64], x: F64) -> F64:
    """Classifier: attack probability per row. Autoencoder: reconstruction of each row."""
    w1, b1, w2, b2 = params
    a, _ = _act(kind, x @ w1 + b1)
    out: F64 = a @ w2 + b2
    if kind == CLASSIFIER:
        result: F64 = 1.0 / (1.0 + np.exp(-np.clip(out[:, 0], -30, 30)))
        return result
    return out


def anomaly_score(params: Sequence[F64], x: F64) -> F64:
    """Autoencoder score: mean squared reconstruction error per row (higher = more anomalous)."""
    out: F64 = ((forward(AUTOENCODER, params, x) - x) ** 2).mean(axis=1)
    return out


def loss(kind: str, params: Sequence[F64], x: F64, y: F64 | None) -> float:
    """Mean binary cross-entropy (classifier) or mean squared error (autoencoder)."""
    if kind == AUTOENCODER:
        return float(anomaly_score(params, x).mean())
    assert y is not None
    p = np.clip(forward(kind, params, x), 1e-7, 1 - 1e-7)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def clipped_gradient_sum(
    kind: str, params: Sequence[F64], x: F64, y: F64 | None, clip: float
) -> tuple[Params, F64]:
    """Sum over rows of per-example gradients, each scaled to L2 norm <= ``clip`` (0 = unclipped).

    Returns the summed gradient and the per-example norms before clipping.
    """
    w1, b1, w2, b2 = params
    z = x @ w1 + b1
    a, da = _act(kind, z)
    out = a @ w2 + b2
    if kind == CLASSIFIER:
        assert y is not None
        p = 1.0 / (1.0 + np.exp(-np.clip(out[:, 0], -30, 30)))
        dout = (p - y)[:, None]
    else:
        dout = 2.0 * (out - x) / x.shape[1]
    dz = (dout @ w2.T) * da
    sq = (
        (x * x).sum(1) * (dz * dz).sum(1)
        + (dz * dz).sum(1)
        + (a * a).sum(1) * (dout * dout).sum(1)
        + (dout * dout).sum(1)
    )
    norms = np.sqrt(sq)
    f = np.minimum(1.0, clip / np.maximum(norms, 1e-12)) if clip > 0 else np.ones_like(norms)
    dzf, doutf = dz * f[:, None], dout * f[:, None]
    grads = [x.T @ dzf, dzf.sum(0), a.T @ doutf, doutf.sum(0)]
    return grads, norms


def train_local(
    kind: str,
    params: Sequence[F64],
    x: F64,
    y: F64 | None,
    cfg: TrainConfig,
    rng: np.random.Generator,
) -> Params:
    """(DP-)SGD from ``params`` on one member's rows; returns new parameters (inputs untouched).

    Each step samples rows independently with probability q (Poisson sampling, what the RDP accountant
    assumes), sums clipped per-example gradients, adds N(0, (sigma*C)^2) noise and divides by the
    expected batch size q*n.
    """
    new = [p.copy() for p in params]
    n = x.shape[0]
    if n == 0:
        return new
    q = cfg.rate(n)
    expected = q * n
    for _ in range(cfg.steps(n)):
        mask = rng.random(n) < q
        if mask.any():
            grads, _ = clipped_gradient_sum(kind, new, x[mask], None if y is None else y[mask], cfg.clip)
        else:
            grads = [np.zeros_like(p) for p in new]
        if cfg.noise_multiplier > 0 and cfg.clip > 0:
            std = cfg.noise_multiplier * cfg.clip
            grads = [g + rng.normal(0.0, std, g.shape) for g in grads]
        for p, g in zip(new, grads, strict=True):
            p -= cfg.lr * g / expected
    return new


def check_update(
    params: Sequence[npt.NDArray[np.generic]], expected: Sequence[tuple[int, ...]]
) -> str | None:
    """Why an update must be excluded (wrong count/shape, NaN or infinity), or None if it is usable."""
    if len(params) != len(expected):
        return f"{len(params)} arrays, expected {len(expected)}"
    for i, (p, shape) in enumerate(zip(params, expected, strict=True)):
        if tuple(p.shape) != tuple(shape):
            return f"array {i} has shape {tuple(p.shape)}, expected {tuple(shape)}"
        if not np.issubdtype(p.dtype, np.number):
            return f"array {i} is not numeric ({p.dtype})"
        if not np.all(np.isfinite(p)):
            bad = int((~np.isfinite(p)).sum())
            return f"array {i} holds {bad} NaN/infinite values"
    return None


def split_params(params: Sequence[F64], counts: Sequence[int]) -> list[Params]:
    """Cut one flat list of arrays into consecutive models of ``counts`` arrays each."""
    out, i = [], 0
    for c in counts:
        out.append(list(params[i : i + c]))
        i += c
    return out
