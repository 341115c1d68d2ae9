"""Consortium certificates admit members only; artefacts load without pickle and refuse a foreign schema."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from healthsec.detect.ml.features import FeatureSchema
from healthsec.federated.artefact import (
    ArtefactError,
    FedSpec,
    check_candidate,
    read_artefact,
    write_artefact,
)
from healthsec.federated.client import HospitalClient, RefusedError
from healthsec.federated.pki import PkiError, check_member, create_consortium, revoke, revoked_serials

from .conftest import flows, member_data


def test_members_admitted_revoked_and_foreign_refused(tmp_path: Path) -> None:
    root, other = tmp_path / "c", tmp_path / "other"
    create_consortium(root, ["alpha", "beta"], ["localhost"])
    create_consortium(other, ["alpha"], ["localhost"])
    ca = (root / "ca.pem").read_bytes()
    assert (root / "members" / "alpha.key").stat().st_mode & 0o777 == 0o600
    assert check_member((root / "members" / "alpha.pem").read_bytes(), ca, set()) == "alpha"
    with pytest.raises(PkiError, match="not issued by the consortium CA"):
        check_member((other / "members" / "alpha.pem").read_bytes(), ca, set())
    revoke(root, "beta")
    revoked = revoked_serials(root / "crl.pem", ca)
    with pytest.raises(PkiError, match=r"member 'beta'.*revoked"):
        check_member((root / "members" / "beta.pem").read_bytes(), ca, revoked)
    assert check_member((root / "members" / "alpha.pem").read_bytes(), ca, revoked) == "alpha"
    # a CRL signed by another CA is refused, not trusted as "nobody revoked"
    with pytest.raises(PkiError, match="not signed by the consortium CA"):
        revoked_serials(other / "crl.pem", ca)
    with pytest.raises(PkiError, match="member name 'Bad Name'"):
        create_consortium(root, ["Bad Name"], ["localhost"])
    with pytest.raises(PkiError, match="not readable PEM"):
        check_member(b"garbage", ca, set())


def _artefact(tmp_path: Path, schema: FeatureSchema) -> tuple[Path, FedSpec]:
    spec = FedSpec(dim=len(schema.dense_names))
    params = [np.full(s, 0.5) for s in spec.shapes()]
    write_artefact(tmp_path / "cand", params, spec, schema, {"rounds": 3, "members": ["a", "b"]})
    return tmp_path / "cand", spec


def test_artefact_round_trip_and_tamper(tmp_path: Path, schema: FeatureSchema) -> None:
    cand, spec = _artefact(tmp_path, schema)
    params, spec2, schema2, meta = read_artefact(cand)
    assert spec2 == spec and schema2.to_dict() == schema.to_dict()
    assert meta["provenance"]["rounds"] == 3
    assert all(np.all(p == 0.5) for p in params)
    data = bytearray((cand / "model.npz").read_bytes())
    data[-30] ^= 0xFF
    (cand / "model.npz").write_bytes(bytes(data))
    with pytest.raises(ArtefactError, match="digest differs"):
        read_artefact(cand)


def test_a_candidate_with_a_foreign_schema_is_refused(tmp_path: Path, schema: FeatureSchema) -> None:
    cand, _ = _artefact(tmp_path, schema)
    frame, _ = flows(300, 5)
    other = FeatureSchema.fit(frame.drop("f3"), ["proto"])
    with pytest.raises(ArtefactError, match="differs from this member's"):
        check_candidate(cand, other)
    assert check_candidate(cand, schema)["provenance"]["members"] == ["a", "b"]


def test_member_refuses_a_global_model_with_another_schema(schema: FeatureSchema) -> None:
    client = HospitalClient(name="h", data=member_data(schema, 1), schema=schema)
    spec = FedSpec(dim=len(schema.dense_names))
    params = [np.zeros(s) for s in spec.shapes()]
    cfg = {
        "schema_sha256": "0" * 64,
        "spec": __import__("json").dumps(spec.to_dict()),
        "rounds": 1,
        "server_round": 1,
    }
    with pytest.raises(RefusedError, match="differs from ours"):
        client.fit(params, cfg)
    with pytest.raises(RefusedError, match="differs from ours"):
        client.evaluate(params, cfg)
