"""Physiological plausibility and consistency between related vitals (a spoofed or altered reading)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Canonical vital -> the metric names devices use for it. Deliberately narrow: a bare "temperature" is a
# fridge or a room as often as a patient, so only body-temperature names are checked physiologically.
ALIASES: dict[str, tuple[str, ...]] = {
    "heart_rate": ("heart_rate", "hr", "ecg_hr", "heartrate"),
    "pulse_rate": ("pulse_rate", "pr", "pulse", "spo2_pr", "pleth_pr"),
    "spo2": ("spo2", "sao2", "oxygen_saturation"),
    "resp_rate": ("resp_rate", "rr", "respiratory_rate", "respiration_rate"),
    "body_temp_c": ("body_temp_c", "body_temperature", "temp_core", "temperature_c_body"),
    "systolic": ("systolic", "sbp", "nibp_sys", "abp_sys", "bp_systolic"),
    "diastolic": ("diastolic", "dbp", "nibp_dia", "abp_dia", "bp_diastolic"),
    "map": ("map", "mean_arterial_pressure", "nibp_mean", "abp_mean"),
    "etco2": ("etco2", "end_tidal_co2"),
    "glucose_mgdl": ("glucose_mgdl", "glucose", "bg_mgdl"),
}
_BY_NAME = {name: vital for vital, names in ALIASES.items() for name in names}

# Limits outside which a living patient's reading cannot be true (not clinical alarm limits).
# Sources: physiological extremes as used by monitor vendors for "invalid signal" rejection.
LIMITS: dict[str, tuple[float, float]] = {
    "heart_rate": (20.0, 300.0),
    "pulse_rate": (20.0, 300.0),
    "spo2": (40.0, 100.0),
    "resp_rate": (2.0, 80.0),
    "body_temp_c": (25.0, 45.0),
    "systolic": (40.0, 300.0),
    "diastolic": (15.0, 200.0),
    "map": (20.0, 250.0),
    "etco2": (0.0, 150.0),
    "glucose_mgdl": (10.0, 1500.0),
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One physiological problem with a reading."""

    rule: str  # "implausible-vital" or "inconsistent-vitals"
    metric: str
    detail: str
    severity: float  # 0..1


def vitals(metrics: Mapping[str, float | None]) -> dict[str, float]:
    """The recognised vitals of a reading, under canonical names (missing values are left out)."""
    out: dict[str, float] = {}
    for name, value in metrics.items():
        vital = _BY_NAME.get(name.lower())
        if vital is not None and value is not None and vital not in out:
            out[vital] = value
    return out


def check(metrics: Mapping[str, float | None]) -> list[Finding]:
    """Impossible values, then contradictions between related vitals."""
    v = vitals(metrics)
    found: list[Finding] = []
    for vital, value in v.items():
        lo, hi = LIMITS[vital]
        if not lo <= value <= hi:
            found.append(
                Finding("implausible-vital", vital, f"{vital}={value:g} outside [{lo:g}, {hi:g}]", 1.0)
            )
    sys_, dia = v.get("systolic"), v.get("diastolic")
    if sys_ is not None and dia is not None:
        if sys_ <= dia:
            found.append(
                Finding("inconsistent-vitals", "systolic", f"systolic {sys_:g} <= diastolic {dia:g}", 0.9)
            )
        elif "map" in v:
            expected = (sys_ + 2 * dia) / 3
            if abs(v["map"] - expected) > 15:
                found.append(
                    Finding(
                        "inconsistent-vitals",
                        "map",
                        f"MAP {v['map']:g} vs {expected:.0f} from systolic/diastolic (tolerance 15 mmHg)",
                        0.7,
                    )
                )
    hr, pr = v.get("heart_rate"), v.get("pulse_rate")
    if hr is not None and pr is not None:
        tolerance = max(15.0, 0.15 * hr)
        if abs(hr - pr) > tolerance:
            found.append(
                Finding(
                    "inconsistent-vitals",
                    "pulse_rate",
                    f"ECG heart rate {hr:g} vs pulse rate {pr:g} differ by more than {tolerance:.0f} bpm",
                    0.7,
                )
            )
    return found
