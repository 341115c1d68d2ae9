"""Small synthetic models of each artefact kind (trained in about a second) for tests of the model store,
the loader, the watcher and the detectors built from artefacts. Not for detection: synthetic data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from healthsec.model import DeviceReading, Flow
from healthsec.model.artefacts import ModelArtefact

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def readings(
    n: int, seed: int, attack_every: int = 0, device_type: str = "pump"
) -> tuple[list[DeviceReading], list[str]]:
    """Pump telemetry: benign rate ~ N(80, 5); every ``attack_every``-th row an injection ~ N(160, 5)."""
    rng = np.random.default_rng(seed)
    out, classes = [], []
    for i in range(n):
        attack = attack_every > 0 and i % attack_every == 0
        out.append(
            DeviceReading(
                id=f"r{seed}-{i}",
                ts=T0 + timedelta(seconds=10 * i),
                source="synthetic",
                device_id=f"pump-{i % 3}",
                device_type=device_type,
                metrics={
                    "rate": float(rng.normal(160 if attack else 80, 5)),
                    "pressure": float(rng.normal(20, 1)),
                },
            )
        )
        classes.append("injection" if attack else "benign")
    return out, classes


def flow_frame(n: int, seed: int) -> Any:
    """A polars frame of synthetic flows: three numeric columns and a categorical ``service``."""
    import polars as pl

    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "duration": rng.exponential(2.0, n),
            "src_bytes": rng.lognormal(6, 1, n),
            "dst_bytes": rng.lognormal(7, 1, n),
            "service": rng.choice(["http", "dns", "hl7"], n).tolist(),
        }
    )


def flows_of(frame: Any, hosts: int = 5) -> list[Flow]:
    """Flow events carrying the frame's rows as ``features``."""
    return [
        Flow(
            id=f"f{i}",
            ts=T0 + timedelta(seconds=i),
            source="synthetic",
            src_ip=f"10.0.0.{i % hosts}",
            dst_ip="10.0.1.1",
            features=row,
        )
        for i, row in enumerate(frame.to_dicts())
    ]


def telemetry_files(seed: int = 1) -> dict[str, bytes]:
    from healthsec.detect.clinical.telemetry_model import TelemetryClassifier

    rs, cs = readings(400, seed, attack_every=4)
    model = TelemetryClassifier(num_boost_round=20).fit(rs, cs)
    return {"model.txt": model.model_text().encode(), "meta.json": model.meta_json().encode()}


def flow_files(seed: int = 2) -> dict[str, bytes]:
    from healthsec.detect.ml.ensemble import FlowEnsemble

    return FlowEnsemble.train(flow_frame(600, seed), ["service"], None, fpr=0.05, seed=0).to_artifacts()


def federated_files(seed: int = 2) -> dict[str, bytes]:
    """A federated global model (kind flows-federated) as `federate join` writes it; attack = a flow with
    unusually many source bytes (top fifth)."""
    import tempfile
    from pathlib import Path

    from healthsec.detect.ml.features import FeatureSchema
    from healthsec.detect.ml.fedmodels import AUTOENCODER, CLASSIFIER, TrainConfig, init_params, train_local
    from healthsec.federated.artefact import FedSpec, write_artefact

    frame = flow_frame(600, seed)
    schema = FeatureSchema.fit(frame, ["service"])
    x = schema.scaled(frame)
    src = frame["src_bytes"].to_numpy()
    y = (src > np.quantile(src, 0.8)).astype(float)
    spec = FedSpec(dim=x.shape[1])
    rng = np.random.default_rng(0)
    cfg = TrainConfig(epochs=30, batch=64, lr=1.0)
    params = train_local(CLASSIFIER, init_params(CLASSIFIER, spec.dim, 32), x, y, cfg, rng)
    params += train_local(AUTOENCODER, init_params(AUTOENCODER, spec.dim, 16), x[y == 0], None, cfg, rng)
    provenance = {"rounds": 3, "members": ["h0", "h1", "h2"], "member_epsilon": 2.98, "aggregation": "fedavg"}
    with tempfile.TemporaryDirectory() as tmp:
        write_artefact(tmp, params, spec, schema, provenance)
        return {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir())}


DEVICES = (("infusion-pump", 2575, 300.0), ("monitor", 104, 1200.0))


def device_capture(device: str, k: int, n: int = 30, seed: int = 3) -> Any:
    """One synthetic capture of ``device`` (see DEVICES): its flows' statistics, server names, apps."""
    import polars as pl

    from healthsec.detect.ml.devices import FLOW_STATS, Capture

    port, size = {d: (p, s) for d, p, s in DEVICES}[device]
    rng = np.random.default_rng([seed, k, port])
    data = {c: rng.normal(size, size / 10, n).tolist() for c in FLOW_STATS}
    data["dst_port"] = [float(port)] * n
    data["protocol"] = [6.0] * n
    return Capture(
        name=f"{device}-{k}",
        frame=pl.DataFrame(data),
        server_names=[f"api.{device}.example"] * n,
        applications=["TLS"] * n,
        clients=["10.9.0.1"] * n,
    )


def device_files() -> dict[str, bytes]:
    from healthsec.detect.ml.devices import DeviceIdentifier

    caps = [device_capture(d, k) for d, _, _ in DEVICES for k in range(4)]
    devs = [d for d, _, _ in DEVICES for _ in range(4)]
    return DeviceIdentifier().fit(caps, devs).to_artifacts({"note": "synthetic"})


def artefact_of(kind: str, files: dict[str, bytes]) -> ModelArtefact:
    """Metadata for ``files`` as ``healthsec train`` records it (version 0: not stored yet)."""
    from healthsec.services.train import build_artefact

    return build_artefact(kind, files, [], metrics={"accuracy": 0.9}, evaluation="synthetic hold-out", now=T0)
