"""CLI: partners add/list, import (good, duplicate, hostile), publish, pull from a live TAXII server."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from healthsec.cli import app
from healthsec.privacy.pseudonymise import SharingKeys
from healthsec.share.stix import export_bundle
from healthsec.share.stix_sample import sample_alerts, sample_incident
from healthsec.share.taxii_serve import BackgroundServer
from healthsec.share.taxii_server import create_taxii_app
from healthsec.store import Store
from healthsec.store.sharing import Sharing

KEY_HEX = "ab" * 32


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HEALTHSEC_DB", str(tmp_path / "cli.db"))
    monkeypatch.setenv("HEALTHSEC_SHARING_KEY", KEY_HEX)
    monkeypatch.delenv("HEALTHSEC_ORG", raising=False)
    return tmp_path


def test_partners_add_list_and_secret_shown_once(env: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "share",
            "partners",
            "add",
            "stmary",
            "--organisation",
            "St Mary",
            "--new-secret",
            "--read",
            "ours",
            "--write",
            "inbox",
            "--max-tlp",
            "amber",
        ],
    )
    assert res.exit_code == 0, res.output
    secret = res.output.split("stored hashed): ")[1].split()[0]
    store = Store.open(str(env / "cli.db"), "local")
    assert Sharing.of(store).partners.verify("stmary", secret)
    listed = runner.invoke(app, ["share", "partners", "list"])
    assert listed.exit_code == 0
    assert "stmary" in listed.output
    assert "inbox:w" in listed.output
    assert "ours:r" in listed.output
    assert secret not in listed.output
    bad = runner.invoke(app, ["share", "partners", "add", "x", "--organisation", "X", "--max-tlp", "red"])
    assert bad.exit_code == 1
    store.close()


def test_import_good_duplicate_and_hostile_files(env: Path) -> None:
    alerts = sample_alerts(3)
    bundle = export_bundle([sample_incident(alerts)], alerts, producer="St Mary")
    good = env / "good.json"
    good.write_bytes(orjson.dumps(bundle))
    runner = CliRunner()
    first = runner.invoke(app, ["share", "import", str(good)])
    assert first.exit_code == 0, first.output
    assert f"{len(bundle['objects'])} new object versions, 0 already known" in first.output
    again = runner.invoke(app, ["share", "import", str(good)])
    assert f"0 new object versions, {len(bundle['objects'])} already known" in again.output
    bundle["objects"][3]["spec_version"] = "2.0"
    hostile = env / "hostile.json"
    hostile.write_bytes(orjson.dumps(bundle))
    res = runner.invoke(app, ["share", "import", str(hostile), "--collection", "fresh"])
    assert res.exit_code == 1
    assert "object 4" in res.output
    assert "quarantined as quarantine-" in res.output
    store = Store.open(str(env / "cli.db"), "local")
    assert Sharing.of(store).collections.get("fresh") is None
    store.close()


def test_publish_then_a_partner_pulls_over_taxii(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ours = Store.open(str(env / "cli.db"), "local")
    alerts = sample_alerts(4)
    ours.alerts.add_many(alerts)
    ours.incidents.upsert_many([sample_incident(alerts)])
    runner = CliRunner()
    pub = runner.invoke(app, ["share", "publish", "--producer", "General Hospital"])
    assert pub.exit_code == 0, pub.output
    assert "published" in pub.output
    sh = Sharing.of(ours)
    cid = sh.collections.get("ours")["id"]  # type: ignore[index]
    sh.partners.add("stmary", "St Mary", secret="their-secret-for-us")
    sh.partners.grant("stmary", cid, read=True, write=False)
    keys = SharingKeys.from_secret(bytes.fromhex(KEY_HEX))
    with BackgroundServer(create_taxii_app(lambda: ours, keys=keys)) as url:
        monkeypatch.setenv("HEALTHSEC_DB", str(env / "stmary.db"))
        monkeypatch.setenv("HEALTHSEC_TAXII_SECRET_GENERAL", "their-secret-for-us")
        add = runner.invoke(
            app,
            [
                "share",
                "partners",
                "add",
                "general",
                "--organisation",
                "General Hospital",
                "--url",
                f"{url}/taxii2/api/",
                "--collection",
                cid,
                "--remote-user",
                "stmary",
            ],
        )
        assert add.exit_code == 0, add.output
        pulled = runner.invoke(app, ["share", "pull"])
    assert pulled.exit_code == 0, pulled.output
    assert "general: " in pulled.output
    assert " new," in pulled.output
    assert "general: 0 objects" not in pulled.output
    down = runner.invoke(app, ["share", "pull"])
    assert "pull failed, will retry: partner unreachable" in down.output
    ours.close()
