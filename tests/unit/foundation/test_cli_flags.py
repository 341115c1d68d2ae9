"""One meaning per flag: ``--input-format`` is what a command reads, ``--format`` what it prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer.main
from typer.testing import CliRunner

from healthsec.cli import app, load_all

runner = CliRunner()
READS = {  # commands whose --format used to name the input: it is --input-format now, --format hidden
    "train flows",
    "detect flows",
    "train telemetry",
    "detect telemetry",
    "detect logs",
    "rules test",
    "federate join",
    "federate schema",
}


def _commands() -> dict[str, Any]:
    load_all()
    found: dict[str, Any] = {}

    def walk(cmd: Any, path: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            found[" ".join(path)] = cmd

    walk(typer.main.get_command(app), [])
    return found


def _options(cmd: Any) -> dict[str, Any]:
    return {name: p for p in cmd.params if p.param_type_name == "option" for name in p.opts}


def test_input_format_is_its_own_flag() -> None:
    commands = _commands()
    for name in READS:
        opts = _options(commands[name])
        assert "--input-format" in opts, name
        assert opts["--format"].hidden, f"{name}: --format is only the hidden old spelling here"
    for name, cmd in commands.items():
        opts = _options(cmd)
        if "--format" in opts and not opts["--format"].hidden:
            assert "input" not in (opts["--format"].help or "").lower(), f"{name}: --format names the output"


def test_json_is_a_hidden_spelling_of_format_json() -> None:
    for name, cmd in _commands().items():
        opts = _options(cmd)
        if "--json" in opts:
            assert opts["--json"].hidden, name
            assert "--format" in opts and not opts["--format"].hidden, name


def test_list_tokens_and_partners_print_json(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    assert runner.invoke(app, ["admin", "create-org", "hosp", "--db", db]).exit_code == 0
    made = runner.invoke(
        app, ["admin", "create-token", "--org", "hosp", "--role", "analyst", "--name", "bob", "--db", db]
    )
    assert made.exit_code == 0, made.output
    res = runner.invoke(app, ["admin", "list-tokens", "--db", db, "--format", "json"])
    assert res.exit_code == 0, res.output
    [token] = json.loads(res.stdout)
    assert (token["org"], token["role"], token["name"], token["state"]) == (
        "hosp",
        "analyst",
        "bob",
        "active",
    )
    assert (
        runner.invoke(
            app, ["share", "partners", "add", "stmary", "--organisation", "St Mary", "--db", db]
        ).exit_code
        == 0
    )
    res = runner.invoke(app, ["share", "partners", "list", "--db", db, "--format", "json"])
    assert res.exit_code == 0, res.output
    assert [p["partner"]["name"] for p in json.loads(res.stdout)] == ["stmary"]
    bad = runner.invoke(app, ["share", "partners", "list", "--db", db, "--format", "xml"])
    assert bad.exit_code == 1 and "--format must be table or json" in bad.output


def test_rules_and_outputs_lists_print_json_with_format_json(tmp_path: Path) -> None:
    rules = Path("../shared/data/sigma-rules/rules/windows/process_creation")
    one = sorted(rules.glob("*.yml"))[0]
    res = runner.invoke(app, ["rules", "list", "--rules", str(one), "--format", "json"])
    assert res.exit_code == 0, res.output
    listed = json.loads(res.stdout)
    assert len(listed) == 1 and listed[0]["id"] and listed[0]["title"] and "techniques" in listed[0]
    env = {
        "HEALTHSEC_OUTPUTS": json.dumps(
            [{"name": "es", "transport": "elastic", "format": "ecs", "url": "https://siem.example/_bulk"}]
        )
    }
    res = runner.invoke(app, ["outputs", "list", "--format", "json"], env=env)
    assert res.exit_code == 0, res.output
    assert [r["name"] for r in json.loads(res.stdout)] == ["es"]
    bad = runner.invoke(app, ["outputs", "list", "--format", "xml"], env=env)
    assert bad.exit_code == 1 and "--format must be table or json" in bad.output
