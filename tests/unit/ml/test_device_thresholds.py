"""The unknown-device thresholds come from cross-validation over the training captures alone."""

from __future__ import annotations

import zlib

import numpy as np
import polars as pl

from healthsec.detect.ml.devices import FLOW_STATS, UNKNOWN, Capture, DeviceIdentifier, choose_thresholds

DEVICES = {"pump": 200.0, "monitor": 900.0, "scale": 60.0, "ecg": 1400.0, "camera": 3000.0}


def _capture(device: str, trial: int, k: int) -> Capture:
    rng = np.random.default_rng(zlib.crc32(f"{device}/{trial}/{k}".encode()))
    n = 24
    size = DEVICES[device]
    data = {c: rng.normal(10, 2, n) for c in FLOW_STATS}
    data["bidirectional_mean_ps"] = rng.normal(size, size * 0.05, n)
    data["bidirectional_bytes"] = rng.normal(size * 20, size, n)
    data["protocol"] = np.full(n, 6.0)
    data["dst_port"] = np.where(np.arange(n) % 4 == 0, 53.0, 443.0)
    names = [None if i % 4 == 0 else f"api.{device}-cloud.com" for i in range(n)]
    apps = ["DNS" if i % 4 == 0 else "TLS" for i in range(n)]
    return Capture(f"{device}_{k}_{trial}.pcap", pl.DataFrame(data), names, apps, ["10.0.0.2"] * n)


def _set(devices: list[str]) -> tuple[list[Capture], list[str], list[int]]:
    caps, devs, trials = [], [], []
    for d in devices:
        for trial in (1, 2):
            for k in range(2):
                caps.append(_capture(d, trial, k))
                devs.append(d)
                trials.append(trial)
    return caps, devs, trials


def test_thresholds_by_leave_one_trial_out_when_trials_are_given() -> None:
    caps, devs, trials = _set(["pump", "monitor", "scale", "ecg"])
    mc, mo, report = choose_thresholds(caps, devs, trials)
    assert report["scheme"].startswith("leave-one-trial-out over 2 trials")
    assert report["known_captures"] == len(caps) and report["unseen_captures"] == len(caps)
    assert report["cv_known_accuracy"] >= 0.8 and report["cv_unseen_to_unknown"] >= 0.8
    assert 0.0 <= mc <= 0.7 and 0.0 <= mo <= 1.0


def test_without_trials_the_folds_are_over_captures() -> None:
    caps, devs, _ = _set(["pump", "monitor", "scale"])
    caps, devs = caps[::2], devs[::2]
    _, _, report = choose_thresholds(caps, devs)
    assert report["scheme"].startswith("5-fold over captures")


def test_fit_uses_its_own_cv_and_names_known_and_refuses_unseen() -> None:
    caps, devs, trials = _set(["pump", "monitor", "scale", "ecg"])
    ident = DeviceIdentifier().fit(caps, devs, trials, flows=False)
    assert ident.tuning["cv_unseen_to_unknown"] >= 0.8
    again = DeviceIdentifier.from_artifacts(ident.to_artifacts())
    assert again.tuning == ident.tuning and again.min_overlap == ident.min_overlap
    assert ident.identify(_capture("monitor", 3, 9))[0] == "monitor"
    assert ident.identify(_capture("camera", 1, 0))[0] == UNKNOWN


def test_a_capture_without_flows_is_unknown() -> None:
    caps, devs, trials = _set(["pump", "monitor", "scale"])
    ident = DeviceIdentifier().fit(caps, devs, trials, flows=False)
    empty = Capture("empty.pcap", pl.DataFrame({c: [] for c in FLOW_STATS}), [], [], [])
    assert ident.identify(empty) == (UNKNOWN, 0.0, "no flows")


def _flows(names: list[str | None], apps: list[str], ports: list[float]) -> Capture:
    n = len(names)
    data = {c: [10.0] * n for c in FLOW_STATS}
    data["protocol"], data["dst_port"] = [6.0] * n, ports
    return Capture("x.pcap", pl.DataFrame(data), names, list(apps), ["10.0.0.2"] * n)


def test_resolver_flows_count_only_when_a_capture_holds_nothing_else() -> None:
    """DNS over TLS looks the same from every device: beside a flow to a vendor never seen, it must not
    make the capture half-fit a known device that also used DoT (a Withings capture was named Wyze)."""
    ident = DeviceIdentifier(
        device_tokens={
            "scale": ["app:DoH_DoT", "app:TLS", "dom:scale-cloud.com", "port:6/443", "port:6/853"],
            "pump": ["app:TLS", "dom:pump-cloud.com", "port:6/443"],
            "monitor": ["app:TLS", "dom:monitor-cloud.com", "port:6/443"],
        }
    )
    dot_and_new = _flows([None, "api.withings.net"], ["DoH_DoT", "TLS"], [853.0, 443.0])
    assert ident.overlap(dot_and_new, "scale") == 0.0
    only_dot = _flows([None], ["DoH_DoT"], [853.0])
    assert ident.overlap(only_dot, "scale") == 1.0
    assert ident.overlap(only_dot, "pump") == 0.0
