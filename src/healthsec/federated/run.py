"""The coordinator and member processes: certificates, schema and data, then Flower over mutual TLS."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from healthsec.detect.ml.features import FeatureSchema
from healthsec.federated.artefact import FedSpec, schema_hash, write_artefact
from healthsec.federated.client import HospitalClient, MemberData, Privacy
from healthsec.federated.pki import PkiError, member_identity
from healthsec.federated.server import (
    FederationServer,
    FederationStrategy,
    FedOptions,
    TimedClientManager,
    global_params,
)
from healthsec.federated.transport import start_server, use_member_certificate

LOG = logging.getLogger("healthsec.federated")


class SetupError(ValueError):
    """A coordinator or member cannot start: names the file and the reason."""


def load_schema(path: str | Path) -> FeatureSchema:
    try:
        return FeatureSchema.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SetupError(f"{path}: not a readable feature schema: {exc}") from exc


def fit_schema(paths: list[Path], fmt: str, label_column: str | None) -> tuple[FeatureSchema, int]:
    """A consortium schema from reference flow files: columns, categories, scaler on benign rows."""
    import polars as pl

    from healthsec.ingest.flows import read_table

    tables = [read_table(p, fmt, label_column) for p in paths]
    frame = pl.concat([t.frame for t in tables], how="diagonal_relaxed")
    labels = [lab for t in tables for lab in (t.labels or ["benign"] * len(t))]
    benign = frame.filter(pl.Series([lab == "benign" for lab in labels]))
    cats = sorted({c for t in tables for c in t.categorical})
    return FeatureSchema.fit(frame, cats, baseline=benign), frame.height


def load_member_data(
    paths: list[Path], fmt: str, label_column: str | None, schema: FeatureSchema
) -> MemberData:
    """A member's labelled flows in the shared encoding; a file missing schema columns is refused."""
    from healthsec.detect.ml.features import SchemaError
    from healthsec.ingest.flows import FlowFormatError, read_table

    xs, ys = [], []
    for p in paths:
        try:
            t = read_table(p, fmt, label_column)
            x = schema.scaled(t.frame)
        except (FlowFormatError, SchemaError) as exc:
            raise SetupError(f"{p}: {exc}") from exc
        if t.labels is None:
            raise SetupError(f"{p}: no labels (give --label-column): the classifier needs labelled rows")
        for e in t.errors[:3]:
            LOG.warning("skipped %s", e.describe())
        xs.append(x)
        ys.append(np.asarray(t.is_attack, dtype=np.float64))
    if not xs:
        raise SetupError("no data files given")
    return MemberData(np.vstack(xs), np.concatenate(ys))


def _wait_for_port(address: str, wait: float) -> None:
    """Members may start before the coordinator: poll its port (bounded) instead of failing at once."""
    import socket
    import time

    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + wait
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise SetupError(f"coordinator {address} not reachable after {wait:.0f} s: {exc}") from exc
            time.sleep(0.5)


@dataclass
class ServeResult:
    provenance: dict[str, Any]
    artefact: Path | None


def serve(
    certs: Path | None,
    address: str,
    schema: FeatureSchema,
    opts: FedOptions,
    wait: float,
    out: Path | None,
    insecure: bool,
    expect: int = 0,
) -> ServeResult:
    """Run the coordinator until ``opts.rounds`` rounds are done; members get the final model."""
    ca = cert = key = None
    crl = None
    if not insecure:
        assert certs is not None
        try:
            ca, cert, key = (
                (certs / n).read_bytes() for n in ("ca.pem", "coordinator.pem", "coordinator.key")
            )
        except OSError as exc:
            raise SetupError(f"{certs}: coordinator credentials missing: {exc}") from exc
        crl = str(certs / "crl.pem")
    spec = FedSpec(dim=len(schema.dense_names))
    strategy = FederationStrategy(spec, schema_hash(schema), opts, expected_members=opts.min_members)
    manager = TimedClientManager(wait=wait, strategy=strategy)
    grpc_server = start_server(manager, address, ca, cert, key, crl, insecure)
    LOG.info(
        "coordinator listening on %s (%s)", address, "INSECURE, loopback only" if insecure else "mutual TLS"
    )
    try:
        if expect > opts.min_members and not manager.wait_for(expect, timeout=int(wait)):
            LOG.warning(
                "%s of %s expected members after %ss: starting with those",
                manager.num_available(),
                expect,
                wait,
            )
        server = FederationServer(manager, strategy)
        server.fit(num_rounds=opts.rounds, timeout=opts.round_timeout)
        path = None
        if out is not None:
            write_artefact(out, global_params(server), spec, schema, strategy.provenance())
            path = out
        server.disconnect_all_clients(timeout=10)
    finally:
        grpc_server.stop(grace=1)
    return ServeResult(strategy.provenance(), path)


def join(
    certs: Path | None,
    name: str,
    address: str,
    data: MemberData,
    schema: FeatureSchema,
    privacy: Privacy,
    out: Path,
    insecure: bool,
    wait: float = 60.0,
    seed: int = 0,
) -> HospitalClient:
    """Connect as member ``name``, train every round, keep the final global model as a candidate."""
    from flwr.client import start_client

    root = None
    if not insecure:
        assert certs is not None
        try:
            ident = member_identity(certs, name)
        except PkiError as exc:
            raise SetupError(str(exc)) from exc
        use_member_certificate(ident.cert_pem, ident.key_pem)
        root = ident.ca_pem
    client = HospitalClient(name=name, data=data, schema=schema, privacy=privacy, out_dir=out, seed=seed)
    _wait_for_port(address, wait)
    start_client(
        server_address=address,
        client=client.to_client(),
        root_certificates=root,
        insecure=insecure,
        max_wait_time=wait,
    )
    return client


def member_metrics(candidate: Path, rows: MemberData) -> dict[str, float]:
    """The global model on this member's own rows (the rows it trained on: not a held-out test).

    Balanced accuracy and macro-F1 at probability 0.5, ROC-AUC of the classifier and of the
    autoencoder's reconstruction error; a figure that needs both classes is left out when one is absent.
    """
    from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

    from healthsec.detect.ml.fedflow import FederatedFlowModel
    from healthsec.federated.artefact import FILES

    model = FederatedFlowModel.from_artifacts({n: (candidate / n).read_bytes() for n in FILES})
    prob, err = model.score(rows.x)
    y = rows.y.astype(bool)
    out = {
        "balanced_accuracy": float(balanced_accuracy_score(y, prob >= 0.5)),
        "macro_f1": float(f1_score(y, prob >= 0.5, average="macro")),
    }
    if 0 < y.sum() < len(y):
        out["roc_auc"] = float(roc_auc_score(y, prob))
        if err is not None:
            out["autoencoder_roc_auc"] = float(roc_auc_score(y, err))
    return out
