"""What every thin command shares: open the store, turn a use case's refusal into one error line, print."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from healthsec.commands.groups import console, fail
from healthsec.services.common import Invalid, ServiceError

if TYPE_CHECKING:
    from healthsec.privacy.pseudonymise import SharingKeys
    from healthsec.store import Store

# What a command prints: ``--format table|json`` on every command that prints records or tables. ``--json``
# is the older spelling, kept hidden for scripts: ``wants_json(fmt, as_json)`` reads both.
FormatOption = Annotated[str, typer.Option("--format", help="What to print: table or json.")]
JsonOption = Annotated[bool, typer.Option("--json", hidden=True, help="Same as --format json.")]
KeyFileOption = Annotated[
    Path | None, typer.Option("--key-file", help="Community key file (else $HEALTHSEC_SHARING_KEY).")
]
InboxOption = Annotated[str, typer.Option("--collection", help="Local collection alias to store into.")]
SourceOption = Annotated[str | None, typer.Option("--source", help="Who sent it (default: the file name).")]
CLI_ACTOR = "cli"
MAX_PROBLEMS = 50


def _default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(type(obj).__name__)


def emit(obj: Any) -> None:
    """Print ``obj`` as indented JSON (dataclasses as their fields)."""
    typer.echo(orjson.dumps(obj, option=orjson.OPT_INDENT_2, default=_default).decode())


def wants_json(fmt: str, as_json: bool = False) -> bool:
    """Whether to print JSON: ``--format json`` (or the hidden ``--json``); a format other than table or
    json is one error line."""
    if fmt not in ("table", "json"):
        raise fail(f"--format must be table or json, not {fmt!r}")
    return as_json or fmt == "json"


def refusal(exc: ServiceError) -> typer.Exit:
    """Print the problems a refusal names (at most 50), then its one error line; return the Exit to raise."""
    if isinstance(exc, Invalid):
        for problem in exc.problems[:MAX_PROBLEMS]:
            console.print(f"[red]{problem}[/]", highlight=False)
        if len(exc.problems) > MAX_PROBLEMS:
            console.print(f"... and {len(exc.problems) - MAX_PROBLEMS} more problems")
    return fail(str(exc))


@contextmanager
def guarded() -> Iterator[None]:
    """Run a use case: a refusal (not found, invalid, refused) becomes one error line and exit code 1."""
    try:
        yield
    except ServiceError as exc:
        raise refusal(exc) from None


@contextmanager
def opened(db: str | None) -> Iterator[Store]:
    """The store named by ``--db`` (else the settings), closed afterwards; refusals as in :func:`guarded`."""
    from healthsec.app import open_store
    from healthsec.store import StoreError

    try:
        store = open_store(db)
    except StoreError as exc:
        raise fail(str(exc)) from None
    try:
        with guarded():
            yield store
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    """Helpers only: no command of its own."""
    del app


def sharing_keys(key_file: Path | None) -> SharingKeys:
    """The community's sharing keys from ``--key-file`` (else $HEALTHSEC_SHARING_KEY), or one error line."""
    from healthsec.share.keys import KeyMissing, load_keys

    try:
        return load_keys(key_file)
    except KeyMissing as exc:
        raise fail(str(exc)) from None


def read_input(path: Path) -> bytes:
    """The bytes of an input file, or one error line naming it."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}") from None


def our_name(producer: str | None) -> str:
    """The organisation's public name: ``--producer``, else the settings' ``org``."""
    from healthsec.config import load_settings

    return producer or load_settings().org


def file_sink(path: Path) -> Callable[[bytes], None]:
    """Write the bytes a use case produces to ``path``; an unwritable path is one error line."""

    def write(data: bytes) -> None:
        try:
            path.write_bytes(data)
        except OSError as exc:
            raise fail(f"cannot write {path}: {exc.strerror}") from None

    return write
