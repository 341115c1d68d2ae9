"""The CLI starts without importing command modules or heavy libraries, and its static table is complete."""

from __future__ import annotations

import subprocess
import sys

import orjson

from healthsec import cli

HEAVY = (
    "numpy",
    "pandas",
    "sklearn",
    "scipy",
    "lightgbm",
    "polars",
    "pyarrow",
    "fastapi",
    "starlette",
    "sqlalchemy",
    "stix2",
    "pydicom",
    "pynetdicom",
    "river",
    "opendp",
    "networkx",
    "hl7apy",
    "httpx",
)

_PROBE = """
import sys, orjson
from typer.testing import CliRunner
from healthsec.cli import app
result = CliRunner().invoke(app, ARGS)
loaded = sorted(m for m in sys.modules if m.split('.')[0] in HEAVY or m.startswith('healthsec.commands.'))
print(orjson.dumps({"code": result.exit_code, "out": result.output, "loaded": loaded}).decode())
"""


def _probe(args: list[str]) -> dict[str, object]:
    code = _PROBE.replace("ARGS", repr(args)).replace("HEAVY", repr(HEAVY))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return orjson.loads(done.stdout.strip().splitlines()[-1])


def test_root_help_lists_every_command_without_importing_any_command_module() -> None:
    seen = _probe(["--help"])
    assert seen["code"] == 0
    assert seen["loaded"] == []
    for name in cli.COMMANDS:
        assert f" {name} " in str(seen["out"])


def test_demo_help_loads_only_the_demo_module_and_no_heavy_library() -> None:
    seen = _probe(["demo", "--help"])
    assert seen["code"] == 0
    assert "--seed" in str(seen["out"])
    assert set(seen["loaded"]) <= {"healthsec.commands.demo", "healthsec.commands.groups"}  # type: ignore[arg-type]


def test_unknown_command_is_a_usage_error() -> None:
    seen = _probe(["no-such-command"])
    assert seen["code"] == 2
    assert "No such command" in str(seen["out"])


_ATTRIBUTION = """
import importlib, sys, orjson, typer
from healthsec import cli
from healthsec.commands import groups
shared = {"train": groups.train_app, "detect": groups.detect_app, "scan": groups.scan_app,
          "listen": groups.listen_app, "share": groups.share_app}
out = {}
for name in cli.command_modules():
    before = {g: len(a.registered_commands) + len(a.registered_groups) for g, a in shared.items()}
    module = importlib.import_module("healthsec.commands." + name)
    fresh = typer.Typer()
    module.register(fresh)
    names = [c.name or c.callback.__name__ for c in fresh.registered_commands]
    names += [g.name for g in fresh.registered_groups]
    after = {g: len(a.registered_commands) + len(a.registered_groups) for g, a in shared.items()}
    names += [g for g in shared if after[g] > before[g]]
    out[name] = sorted(names)
print(orjson.dumps(out).decode())
"""


def test_every_commands_module_is_in_the_static_table_under_the_names_it_registers() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _ATTRIBUTION], capture_output=True, text=True, timeout=300, check=True
    )
    registered: dict[str, list[str]] = orjson.loads(done.stdout.strip().splitlines()[-1])
    listed = {m for _, modules in cli.COMMANDS.values() for m in modules}
    missing = sorted(set(cli.command_modules()) - listed)
    assert not missing, f"add these healthsec.commands modules to healthsec.cli.COMMANDS: {missing}"
    for module, names in registered.items():
        for name in names:
            assert name in cli.COMMANDS, f"{module} registers {name!r}, which is not in cli.COMMANDS"
            assert module in cli.COMMANDS[name][1], f"cli.COMMANDS[{name!r}] must list module {module!r}"
    stale = sorted(n for n, (_, mods) in cli.COMMANDS.items() if not set(mods) & set(registered))
    assert not stale, f"cli.COMMANDS names commands no module provides: {stale}"


def test_each_listed_command_resolves_to_a_real_command() -> None:
    from typer.testing import CliRunner

    for name in cli.COMMANDS:
        result = CliRunner().invoke(cli.app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output
