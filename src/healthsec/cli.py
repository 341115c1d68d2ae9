"""The ``healthsec`` command line (Typer): thin commands, each module imported only when its command runs.

``healthsec --help`` is answered from the static table :data:`COMMANDS` (name, one-line help, the
``healthsec.commands`` modules that provide it), so it imports no command module and no heavy library.
Invoking a command (or asking for its own ``--help``) imports just the modules listed for it and calls
their ``register(app)``. A commands module that is missing from the table still works (it is loaded when
an unknown name is asked for) but does not show in the help; ``tests/unit/foundation/test_cli_lazy.py``
fails until it is listed.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from healthsec import __version__, commands

HELP = "AI-driven cyber-defence for hospitals: detect, analyse, share and react."

# name -> (one-line help shown by `healthsec --help`, modules of healthsec.commands that provide it).
# Order here is the order of the help listing.
COMMANDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "risk": (
        "Assets ranked by risk = likelihood x impact (patient safety, PHI, availability), with the reasons.",
        ("analysis",),
    ),
    "paths": (
        "Most likely attack paths from entry points to clinical assets, and the fixes that cut the most"
        " risk.",
        ("analysis",),
    ),
    "demo": (
        "Simulate a hospital day with five attack campaigns, run the whole pipeline and report.",
        ("demo",),
    ),
    "identify": (
        "Name the device type behind each capture; 'unknown' when no known device fits.",
        ("flows",),
    ),
    "serve": (
        "Run the REST API (uvicorn). With --bus nats, ingestion goes to JetStream for `healthsec worker`.",
        ("service",),
    ),
    "worker": (
        "Consume the NATS JetStream work queue: store events, run detectors, write alerts (at-least-once).",
        ("service",),
    ),
    "incidents": ("Incidents: alerts correlated into one story each.", ("analysis", "analysis_incidents")),
    "assets": ("The asset inventory: import, list, discover from alerts.", ("analysis",)),
    "attack": ("The pinned ATT&CK knowledge (Enterprise + ICS).", ("analysis",)),
    "rules": ("Sigma rules: list, check (what cannot run, and why), test against a log.", ("logs",)),
    "admin": ("Organisations and API tokens (run on the server).", ("service",)),
    "db": ("Database maintenance.", ("service",)),
    "train": ("Train detection models on your own or public data.", ("flows", "clinical_fhir_iomt")),
    "detect": (
        "Run detection over files and write predictions or alerts.",
        ("flows", "logs", "clinical_fhir_iomt"),
    ),
    "scan": (
        "Inspect clinical files (HL7, DICOM, FHIR) for attacks.",
        ("clinical_hl7_dicom", "clinical_fhir_iomt"),
    ),
    "listen": (
        "Run a clinical listener or proxy in the foreground.",
        ("clinical_hl7_dicom", "clinical_fhir_iomt"),
    ),
    "share": (
        "Share with partner hospitals: STIX 2.1, TAXII 2.1, MISP, TLP.",
        ("share_export", "share_misp", "share_stats", "share_taxii"),
    ),
    "detectors": (
        "The detection engine's detectors: state (running, learning, waiting), dead letters.",
        ("detectors",),
    ),
    "alerts": ("Alerts: list, show, triage as true or false positive.", ("alerts",)),
    "cases": ("Cases: open from incidents, tasks, observables, containment approvals, clocks.", ("cases",)),
    "playbooks": (
        "Playbooks: list, check a YAML file, run over incidents (dry-run containment).",
        ("playbooks",),
    ),
    "notify": ("Notifications: dispatch the outbox, list, requeue, clock warnings.", ("playbooks",)),
    "outputs": ("SIEM outputs (OCSF, ECS, CEF, syslog, Splunk HEC): list, render, backfill.", ("outputs",)),
    "deadlines": (
        "Breach-notification deadlines (GDPR, NIS2, HIPAA) for stated facts (what-if).",
        ("deadlines",),
    ),
    "intel": (
        "Threat intelligence in: CSAF advisories, KEV, EPSS, inventory matches, ATT&CK tagging of text.",
        ("intel",),
    ),
    "federate": (
        "Federated training across hospitals (Flower, mutual TLS, DP, secure aggregation).",
        ("federate",),
    ),
    "models": ("Trained models as versioned artefacts: list, show, promote, retire.", ("models",)),
    "replay": (
        "Send the simulated hospital (or recorded events) to a running service over HTTP, in time order.",
        ("replay",),
    ),
}
# Modules of healthsec.commands that are helpers, not command providers.
NOT_COMMANDS = frozenset({"groups", "adapter", "live_ingest"})  # helpers of the command modules

_loaded: set[str] = set()
_added_groups: set[str] = set()


def _load(modules: tuple[str, ...] | list[str]) -> None:
    """Import the command modules, call each ``register(app)`` once, and mount the shared groups."""
    from healthsec.commands import groups

    for name in modules:
        if name in _loaded:
            continue
        module = importlib.import_module(f"{commands.__name__}.{name}")
        module.register(app)
        _loaded.add(name)
    shared = {
        "train": groups.train_app,
        "detect": groups.detect_app,
        "scan": groups.scan_app,
        "listen": groups.listen_app,
        "share": groups.share_app,
    }
    for gname, group in shared.items():
        if gname not in _added_groups and (group.registered_commands or group.registered_groups):
            app.add_typer(group, name=gname)
            _added_groups.add(gname)


def command_modules() -> list[str]:
    """Every module of ``healthsec.commands`` that provides commands (found on disk, not imported)."""
    return sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if m.name not in NOT_COMMANDS)


def load_all() -> None:
    """Register every command module (for tests and tools that need the whole tree)."""
    _load(command_modules())


class _Listed(TyperCommand):
    """A stand-in used only to print one row of ``healthsec --help`` without importing the command."""


class LazyGroup(TyperGroup):
    """The root group: lists names from :data:`COMMANDS`, imports a command's modules on first use."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        names = list(COMMANDS)
        return names + [n for n in super().list_commands(ctx) if n not in COMMANDS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if self._listing and cmd_name in COMMANDS:
            return _Listed(cmd_name, help=COMMANDS[cmd_name][0], short_help=COMMANDS[cmd_name][0])
        if cmd_name in COMMANDS:  # every module of the name, even if another module registered it already
            _load(COMMANDS[cmd_name][1])
        elif (found := super().get_command(ctx, cmd_name)) is not None:
            return found
        else:  # a module not in the table yet: load the unlisted ones rather than fail
            listed = {m for _, mods in COMMANDS.values() for m in mods}
            _load([m for m in command_modules() if m not in listed])
        built: Any = typer.main.get_command(app)  # typer vendors click: reach commands by attribute
        return getattr(built, "commands", {}).get(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="healthsec",
    help=HELP,
    cls=LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"healthsec {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """AI-driven cyber-defence for hospitals: detect, analyse, share and react."""
    from healthsec.config import cli_log_level
    from healthsec.observability import configure_logging

    configure_logging(cli_log_level())


def main() -> None:
    """Run the CLI; a store that cannot be reached mid-command ends in one error line, not a traceback."""
    import os

    # every file and folder a command writes (stores, models, reports, keys) is the user's alone: 0600/0700
    os.umask(0o077)
    try:
        app()
    except Exception as exc:
        reason = _unreachable(exc)
        if reason is None:
            raise
        from healthsec.commands.groups import fail

        fail(reason)
        raise SystemExit(1) from None


def _unreachable(exc: BaseException) -> str | None:
    """One line for the failures a user must fix outside healthsec (a database or broker away)."""
    from healthsec.store import StoreError

    if isinstance(exc, StoreError):
        return str(exc)
    from healthsec.bus.worker import is_transient

    if is_transient(exc):
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return f"database unavailable: {first[0] if first else type(exc).__name__}"
    return None


if __name__ == "__main__":
    main()
