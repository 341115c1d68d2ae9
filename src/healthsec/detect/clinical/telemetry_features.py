"""Telemetry features from readings and their behaviour over time per device; never the calendar.

Each device's readings are put in time order (stable: rows with the same time keep input order) and each
reading gets, per metric: its value, the change from the device's previous reading, that change per
second, the mean, spread and number of changes over the device's last ``WINDOW`` readings, and the
distance of the value from that mean; and, per reading: how many metrics changed together (cross-sensor
consistency). Only earlier readings of the same device are used, so a stream can be scored as it comes.
The timestamp orders readings and measures the gap between them; the date, the hour and the gap itself
are never features (in TON_IoT each attack type was recorded on its own day, so any clock feature leaks).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from healthsec.model import DeviceReading

WINDOW = 5
VALUES = "values"
BEHAVIOUR = "behaviour"
FEATURE_SETS = (VALUES, BEHAVIOUR)
_PER_METRIC = ("delta", "rate", "mean", "std", "changes", "from_mean")


def value_matrix(readings: Sequence[DeviceReading], metrics: Sequence[str]) -> npt.NDArray[np.float64]:
    """One row per reading, one column per metric, NaN where the reading lacks the metric."""
    x = np.full((len(readings), len(metrics)), np.nan)
    index = {f: i for i, f in enumerate(metrics)}
    for row, r in enumerate(readings):
        for name, value in r.metrics.items():
            col = index.get(name)
            if col is not None and value is not None:
                x[row, col] = value
    return x


def feature_names(metrics: Sequence[str], feature_set: str) -> list[str]:
    """Column names of :func:`features` for these metrics."""
    if feature_set == VALUES:
        return list(metrics)
    if feature_set != BEHAVIOUR:
        raise ValueError(f"unknown feature set {feature_set!r}; expected one of {', '.join(FEATURE_SETS)}")
    names = list(metrics)
    for m in metrics:
        names.extend(f"{m}.{kind}" for kind in _PER_METRIC)
    names.append("metrics_changed")
    return names


def _device_order(readings: Sequence[DeviceReading]) -> list[npt.NDArray[np.int64]]:
    """Row indices of each device's readings, in time order (ties keep input order)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(readings):
        groups[r.device_id].append(i)
    out = []
    for rows in groups.values():
        ts = np.array([readings[i].ts.timestamp() for i in rows])
        out.append(np.asarray(rows, dtype=np.int64)[np.argsort(ts, kind="stable")])
    return out


def _rolling(v: npt.NDArray[np.float64], window: int) -> tuple[npt.NDArray[np.float64], ...]:
    """Mean and standard deviation over the last ``window`` rows (fewer at the start), NaN-aware."""
    pad = np.full((window - 1, v.shape[1]), np.nan)
    win = sliding_window_view(np.vstack([pad, v]), window, axis=0)  # (n, m, window)
    count = np.sum(~np.isnan(win), axis=2)
    total = np.nansum(win, axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        sq = np.nansum((win - mean[:, :, None]) ** 2, axis=2)
        std = np.where(count > 0, np.sqrt(sq / np.maximum(count, 1)), np.nan)
    return mean, std


def features(
    readings: Sequence[DeviceReading], metrics: Sequence[str], feature_set: str
) -> npt.NDArray[np.float64]:
    """The feature matrix, rows in input order; see the module docstring."""
    values = value_matrix(readings, metrics)
    if feature_set == VALUES:
        return values
    names = feature_names(metrics, feature_set)
    out = np.full((len(readings), len(names)), np.nan)
    m = len(metrics)
    out[:, :m] = values
    for rows in _device_order(readings):
        v = values[rows]
        ts = np.array([readings[i].ts.timestamp() for i in rows])
        delta = np.full_like(v, np.nan)
        delta[1:] = v[1:] - v[:-1]
        gap = np.full(len(rows), np.nan)
        gap[1:] = ts[1:] - ts[:-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(gap[:, None] > 0, delta / gap[:, None], np.nan)
        mean, std = _rolling(v, WINDOW)
        changed = (np.nan_to_num(delta, nan=0.0) != 0).astype(np.float64)
        changes = _rolling(changed, WINDOW)[0] * np.minimum(np.arange(1, len(rows) + 1), WINDOW)[:, None]
        block = np.stack([delta, rate, mean, std, changes, v - mean], axis=2)  # (n, m, kinds)
        out[rows, m : m + m * len(_PER_METRIC)] = block.reshape(len(rows), -1)
        out[rows, -1] = changed.sum(axis=1)
        out[rows[0], -1] = np.nan  # a device's first reading has no previous one to compare with
    return out
