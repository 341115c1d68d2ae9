"""``healthsec share export`` end to end: store → STIX/MISP file, privacy and policy applied, errors clear."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from healthsec.cli import app
from healthsec.share.policy import TLP, TLP_MARKING_IDS, PartnerPolicy, policy_to_dict
from healthsec.share.stix import validate_bundle
from healthsec.share.stix_sample import sample_alerts, sample_incident
from healthsec.store import Store
from healthsec.store.sharing import Sharing

KEY = "5f" * 32
PARTNER_ORG = "identity--22222222-2222-4222-8222-222222222222"
SECRETS = ("10.20.0.5", "MRN-0042-SECRET", "dr.jones")


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "hs.db")
    store = Store.open(path, "local")
    alerts = sample_alerts(4)
    store.alerts.add_many(alerts)
    store.incidents.upsert_many([sample_incident(alerts, id="inc-1")])
    Sharing.of(store).partners.add(
        "hospital-b",
        PARTNER_ORG,
        policy=policy_to_dict(PartnerPolicy("hospital-b", PARTNER_ORG, max_tlp=TLP.AMBER_STRICT)),
    )
    store.close()
    return path


def _run(*args: str, key: str | None = KEY) -> tuple[int, str]:
    env = {"HEALTHSEC_SHARING_KEY": key} if key else {"HEALTHSEC_SHARING_KEY": ""}
    result = CliRunner().invoke(app, ["share", "export", *args], env=env)
    return result.exit_code, result.output


def test_stix_export_is_valid_and_leaks_nothing(db: str, tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    code, text = _run("--db", db, "--tlp", "green", "--to", str(out))
    assert code == 0, text
    assert "for community as stix" in text
    raw = out.read_text()
    for secret in SECRETS:
        assert secret not in raw
    bundle = json.loads(raw)
    assert validate_bundle(bundle) == []
    assert {o["type"] for o in bundle["objects"]} >= {
        "incident",
        "report",
        "indicator",
        "sighting",
        "attack-pattern",
    }
    assert all(
        TLP_MARKING_IDS[TLP.GREEN] in o.get("object_marking_refs", [TLP_MARKING_IDS[TLP.GREEN]])
        for o in bundle["objects"]
    )


def test_misp_export_for_named_partner_amber_strict(db: str, tmp_path: Path) -> None:
    out = tmp_path / "event.json"
    code, text = _run(
        "--db",
        db,
        "--incident",
        "inc-1",
        "--tlp",
        "amber+strict",
        "--partner",
        "hospital-b",
        "--format",
        "misp",
        "--to",
        str(out),
    )
    assert code == 0, text
    raw = out.read_text()
    for secret in SECRETS:
        assert secret not in raw
    event = json.loads(raw)["Event"]
    assert "tlp:amber+strict" in {t["name"] for t in event["Tag"]}
    assert "203.0.0.0" in {a["value"] for a in event["Attribute"]}  # external actor IP stays an IOC


@pytest.mark.parametrize(
    ("args", "key", "message"),
    [
        (["--tlp", "green"], None, "no sharing key"),
        (["--tlp", "red"], KEY, "TLP:RED never leaves"),
        (["--tlp", "amber+strict"], KEY, "only to a named organisation"),
        (["--tlp", "purple"], KEY, "unknown TLP level 'purple'"),
        (["--partner", "nobody"], KEY, "unknown partner 'nobody'"),
        (["--incident", "inc-404"], KEY, "no incident 'inc-404'"),
        (["--format", "csv"], KEY, "--format must be stix or misp"),
    ],
)
def test_refusals_write_nothing(
    db: str, tmp_path: Path, args: list[str], key: str | None, message: str
) -> None:
    out = tmp_path / "never.json"
    code, text = _run("--db", db, *args, "--to", str(out), key=key)
    assert code == 1
    assert message in " ".join(text.split())
    assert not out.exists()


def test_filtered_anonymous_partner_still_gets_a_valid_bundle(db: str, tmp_path: Path) -> None:
    store = Store.open(db, "local")
    cert = PartnerPolicy(
        "cert",
        "identity--44444444-4444-4444-8444-444444444444",
        max_tlp=TLP.AMBER,
        allowed_types=frozenset({"indicator", "sighting", "attack-pattern", "relationship", "ipv4-addr"}),
        min_confidence=50,
        anonymous=True,
    )
    Sharing.of(store).partners.add("cert", cert.organisation, policy=policy_to_dict(cert))
    store.close()
    out = tmp_path / "cert.json"
    code, text = _run("--db", db, "--partner", "cert", "--to", str(out))
    assert code == 0, text
    bundle = json.loads(out.read_text())
    assert validate_bundle(bundle) == []
    types = {o["type"] for o in bundle["objects"]}
    assert "sighting" in types
    assert types <= {
        "indicator",
        "sighting",
        "attack-pattern",
        "relationship",
        "ipv4-addr",
        "identity",
        "marking-definition",
    }
    assert [o["name"] for o in bundle["objects"] if o["type"] == "identity"] == [
        "Health sector sharing community (anonymous member)"
    ]


def test_everything_withheld_writes_nothing(db: str, tmp_path: Path) -> None:
    store = Store.open(db, "local")
    notes_only = PartnerPolicy("notes", PARTNER_ORG, max_tlp=TLP.AMBER, allowed_types=frozenset({"note"}))
    Sharing.of(store).partners.add("notes", PARTNER_ORG, policy=policy_to_dict(notes_only))
    store.close()
    out = tmp_path / "never.json"
    code, text = _run("--db", db, "--partner", "notes", "--to", str(out))
    assert code == 1
    assert "the policy for 'notes' withholds everything" in " ".join(text.split())
    assert not out.exists()
