"""Vital signs of the simulated patients: per-monitor baselines and slowly varying readings."""

from __future__ import annotations

import math
import random

from healthsec.sim.hospital import Hospital


def vital_signs(rng: random.Random, base: dict[str, float], t_hours: float) -> dict[str, float | None]:
    """Plausible, slowly varying vital signs for one patient."""
    drift = math.sin(t_hours / 3.0)
    return {
        "heart_rate": round(base["heart_rate"] + 4 * drift + rng.gauss(0, 2.5), 1),
        "spo2": round(min(100.0, base["spo2"] + rng.gauss(0, 0.8)), 1),
        "resp_rate": round(base["resp_rate"] + rng.gauss(0, 1.2), 1),
        "systolic_bp": round(base["systolic_bp"] + 3 * drift + rng.gauss(0, 4), 1),
        "diastolic_bp": round(base["diastolic_bp"] + 2 * drift + rng.gauss(0, 3), 1),
    }


def monitor_baselines(h: Hospital, seed: int) -> dict[str, dict[str, float]]:
    rng = random.Random(seed * 31 + 5)
    return {
        m: {
            "heart_rate": rng.uniform(62, 95),
            "spo2": rng.uniform(94, 99),
            "resp_rate": rng.uniform(12, 20),
            "systolic_bp": rng.uniform(105, 140),
            "diastolic_bp": rng.uniform(65, 88),
        }
        for m in h.names("patient_monitor")
    }
