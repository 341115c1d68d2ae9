"""The federated global model as a managed artefact (kind flows-federated): registered with its federation
provenance, promoted by the member, loaded by the worker's watcher, scoring Flow events; bad bytes refused.

Pure numpy and the store: no Flower needed (the federation itself is tested in tests/federated).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from healthsec.detect.artefacts_load import ArtefactRefused, load_artefact
from healthsec.detect.ml.artefact_detectors import detector_for
from healthsec.detect.ml.features import FeatureSchema
from healthsec.federated.artefact import ArtefactError, check_candidate
from healthsec.services.models import promote_model
from healthsec.services.train import register_trained
from healthsec.store import Store
from healthsec.store.models import ModelWatcher, models
from healthsec.testing.artefacts import federated_files, flow_frame, flows_of

PROVENANCE = {"rounds": 3, "members": ["h0", "h1", "h2"], "member_epsilon": 2.98, "aggregation": "fedavg"}


@pytest.fixture(scope="module")
def candidate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FeatureSchema]:
    """A global model as `federate join` writes it: attack = a flow with unusually many source bytes."""
    out = tmp_path_factory.mktemp("fed") / "cand"
    out.mkdir()
    for name, data in federated_files().items():
        (out / name).write_bytes(data)
    return out, FeatureSchema.fit(flow_frame(600, 2), ["service"])


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(str(tmp_path / "m.db"), "north")


def test_registered_promoted_and_run_by_the_worker(
    candidate: tuple[Path, FeatureSchema], store: Store
) -> None:
    cand, _ = candidate
    stored = register_trained(
        store, "flows-federated", cand, [], metrics={"balanced_accuracy": 0.9}, evaluation="own rows",
        provenance={"federation": PROVENANCE},
    )  # fmt: skip
    assert (stored.id, stored.status.value, stored.name) == (
        "flows-federated-v1",
        "candidate",
        "federated-flow-model",
    )
    assert stored.formats == ("json", "numpy-npz")
    assert stored.provenance["federation"]["members"] == ["h0", "h1", "h2"]
    assert stored.features == ("duration", "src_bytes", "dst_bytes", "service")
    watcher = ModelWatcher(store, ["flows-federated"])
    assert watcher.poll() == []  # a candidate is not in service: the member decides
    promote_model(store, "flows-federated", 1)
    (change,) = watcher.poll()
    det = detector_for(change.loaded)  # type: ignore[arg-type]
    assert (det.name, det.version) == ("flow-federated", "1.0+flows-federated-v1")
    frame = flow_frame(200, 11)
    flows = flows_of(frame)
    big = np.quantile(frame["src_bytes"].to_numpy(), 0.8)
    alerts = det.detect(flows)
    flagged = {a.evidence[0] for a in alerts}
    truth = {f.id for f in flows if float(f.features["src_bytes"]) > big}  # type: ignore[arg-type]
    assert len(flagged & truth) >= 0.8 * len(truth) and len(flagged - truth) <= 0.1 * len(flows)
    assert all("reconstruction_error" in a.features for a in alerts)


def _files(cand: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in cand.iterdir()}


def _art(store: Store, cand: Path):  # type: ignore[no-untyped-def]
    return register_trained(store, "flows-federated", cand, [])


@pytest.mark.parametrize("fault", ["digest", "pickle", "shape", "nan"])
def test_bad_weights_are_refused_in_one_line(
    candidate: tuple[Path, FeatureSchema], store: Store, fault: str
) -> None:
    cand, _ = candidate
    art = _art(store, cand)
    files = _files(cand)
    with np.load(io.BytesIO(files["model.npz"]), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    if fault == "digest":
        arrays["p00"] = arrays["p00"] + 1.0
    elif fault == "pickle":
        arrays["p00"] = np.array([{"x": 1}], dtype=object)
    elif fault == "shape":
        arrays["p00"] = arrays["p00"][:, :3]
    else:
        arrays["p01"] = arrays["p01"].copy()
        arrays["p01"][0] = np.nan
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=fault == "pickle", **arrays)
    files["model.npz"] = buf.getvalue()
    if fault != "digest":  # a forger who also rewrote the digests: the content checks still refuse
        import hashlib
        import json

        from healthsec.services.train import build_artefact

        meta = json.loads(files["metadata.json"])
        meta["model_sha256"] = hashlib.sha256(files["model.npz"]).hexdigest()
        files["metadata.json"] = json.dumps(meta).encode()
        art = build_artefact("flows-federated", files, [])
    with pytest.raises(ArtefactRefused) as err:
        load_artefact(art, files)
    msg = str(err.value)
    assert "\n" not in msg and "flows-federated" in msg
    expected = {
        "digest": "does not match its recorded SHA-256",
        "pickle": "model.npz",
        "shape": "shape",
        "nan": "NaN",
    }[fault]
    assert expected in msg


def test_a_foreign_schema_is_refused_before_registration(candidate: tuple[Path, FeatureSchema]) -> None:
    cand, schema = candidate
    assert check_candidate(cand, schema)["provenance"]["rounds"] == 3
    other = FeatureSchema.fit(flow_frame(100, 5).drop("dst_bytes"), ["service"])
    with pytest.raises(ArtefactError, match="differs from this member's"):
        check_candidate(cand, other)


def test_models_listing_shows_the_federated_kind(candidate: tuple[Path, FeatureSchema], store: Store) -> None:
    cand, _ = candidate
    _art(store, cand)
    assert [a.id for a in models(store).list(kind="flows-federated")] == ["flows-federated-v1"]
