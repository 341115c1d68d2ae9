"""Analyst-readable explanations: top features with their values and the direction they push the score."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from healthsec.detect.ml.features import F64, FeatureSchema


def fmt_value(v: object) -> str:
    if v is None:
        return "missing"
    if isinstance(v, float):
        if v != v:  # NaN
            return "missing"
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:,.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return str(v)


def contribution_sentence(
    prob: float, contrib: F64, names: Sequence[str], values: Sequence[object], top: int = 3
) -> str:
    """From LightGBM pred_contrib (log-odds per feature, bias last) for one row."""
    c = contrib[:-1]
    order = np.argsort(-np.abs(c))[:top]
    bits = []
    for i in order:
        if c[i] == 0:
            continue
        way = "towards attack" if c[i] > 0 else "towards benign"
        bits.append(f"{names[i]} = {fmt_value(values[i])} ({way}, {c[i]:+.2f} log-odds)")
    reasons = "; ".join(bits) if bits else "no single feature stands out"
    return f"LightGBM attack probability {prob:.2f} (calibrated); strongest features: {reasons}."


def deviation_sentence(
    part: str,
    margin: float,
    deviation: F64,
    dense_row: F64,
    schema: FeatureSchema,
    values: dict[str, object],
    top: int = 3,
) -> str:
    """For an unsupervised part: the encoded features that deviate most from the benign baseline."""
    names = schema.dense_names
    mean = np.asarray(schema.mean)
    bits: list[str] = []
    seen: set[str] = set()
    n_num = len(schema.numeric)
    medians = schema.medians
    for i in np.argsort(-deviation):
        if len(bits) >= top:
            break
        name = names[i]
        if i < n_num:
            v = values.get(name)
            med = medians[i]
            if isinstance(v, int | float) and v == v and v != med:
                where = f"{'above' if v > med else 'below'} the benign median {fmt_value(med)}"
            else:
                where = f"benign median {fmt_value(med)}; unusual together with the others"
            bits.append(f"{name} = {fmt_value(v)} ({where})")
            seen.add(name)
            continue
        col = name.split("=", 1)[0]
        if col in seen:
            continue
        seen.add(col)
        value = values.get(col)
        known = schema.categorical.get(col, [])
        key = f"{col}={value}" if value in known else f"{col}=(other)"
        share = float(mean[names.index(key)]) if key in names else 0.0
        bits.append(f"{col} = {fmt_value(value)} ({share:.1%} of benign training flows)")
    label = {
        "iforest": "Isolation Forest",
        "autoencoder": "Autoencoder",
        "stream": "Streaming Half-Space Trees",
    }.get(part, part)
    basis = "started on benign flows, learning gated" if part == "stream" else "trained on benign flows only"
    return (
        f"{label} anomaly score {margin:.2f}x its alert threshold ({basis}); most unusual: {'; '.join(bits)}."
    )
