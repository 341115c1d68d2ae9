"""The ``healthsec`` command line (Typer): thin commands that call the app's services."""

from __future__ import annotations

import importlib
import os
import pkgutil

import typer

from healthsec import __version__, commands
from healthsec.commands.groups import detect_app, listen_app, scan_app, share_app, train_app

app = typer.Typer(
    name="healthsec",
    help="AI-driven cyber-defence for hospitals: detect, analyse, share and react.",
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
    from healthsec.observability import configure_logging

    level = os.environ.get("HEALTHSEC_LOG_LEVEL", "WARNING").upper()
    configure_logging(level if level in ("DEBUG", "INFO", "WARNING", "ERROR") else "WARNING")


def _register_all() -> None:
    groups = {
        "train": train_app,
        "detect": detect_app,
        "scan": scan_app,
        "listen": listen_app,
        "share": share_app,
    }
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name == "groups":
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(app)
    for name, group in groups.items():
        if group.registered_commands or group.registered_groups:
            app.add_typer(group, name=name)


_register_all()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
