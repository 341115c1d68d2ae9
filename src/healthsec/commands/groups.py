"""Command groups shared by several command modules (``healthsec train ...``, ``healthsec detect ...``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from healthsec.engine import DetectorFailure, Engine

# Lines are never wrapped at the terminal width (soft wrap): a message, a skipped-record line or a path
# stays one line that can be grepped, whatever COLUMNS is; tables still fit the width.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

train_app = typer.Typer(help="Train detection models on your own or public data.", no_args_is_help=True)
detect_app = typer.Typer(
    help="Run detection over files and write predictions or alerts.", no_args_is_help=True
)
scan_app = typer.Typer(help="Inspect clinical files (HL7, DICOM, FHIR) for attacks.", no_args_is_help=True)
listen_app = typer.Typer(help="Run a clinical listener or proxy in the foreground.", no_args_is_help=True)
share_app = typer.Typer(
    help="Share with partner hospitals: STIX 2.1, TAXII 2.1, MISP, TLP.", no_args_is_help=True
)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL or SQLite path (else $HEALTHSEC_DB, else the embedded default)."),
]


# What a command reads is ``--input-format`` (``--format`` is what a command prints: table or json). The
# commands that used ``--format`` for their input still take it, hidden, with one warning line.
OldInputFormatOption = Annotated[
    str | None, typer.Option("--format", hidden=True, help="Deprecated: use --input-format.")
]


def input_format(given: str | None, old: str | None, default: str | None = None) -> str:
    """The input format from ``--input-format``, else from the deprecated ``--format`` (one warning line on
    stderr), else ``default``; none of them is one error line."""
    if old is not None:
        err_console.print(
            "[yellow]warning:[/] --format for the input format is deprecated; use --input-format",
            highlight=False,
        )
        if given is not None and given != old:
            raise fail(f"--input-format {given!r} and --format {old!r} disagree: give --input-format only")
    chosen = given or old or default
    if chosen is None:
        raise fail("missing option --input-format")
    return chosen


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one clear error line (never wrapped, whatever the terminal width) and return the Exit."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def clip(text: str, width: int) -> str:
    """At most ``width`` characters, cut at a space with an ellipsis: never in the middle of a word."""
    import textwrap

    return textwrap.shorten(text, width, placeholder=" …")


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Callable[..., None]]:
    """A progress bar for a long run, on stderr and only on a terminal (pipes, files and scripts see
    nothing); yields ``advance(n, total=None)`` (a total learnt late is given once known)."""
    import sys

    if not sys.stderr.isatty():
        yield lambda n, total=None: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n, total=None: bar.update(task, advance=n, total=total or bar.tasks[0].total)


def stop_on_sigterm() -> None:
    """Make SIGTERM stop a foreground command the way Ctrl-C does (its final summary included)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():  # (embedded in a thread: the host's signals)
        signal.signal(signal.SIGTERM, signal.default_int_handler)


class StatusLine:
    """Print a listener's status line only when it changed since the last one printed."""

    def __init__(self) -> None:
        self.last: str | None = None

    def show(self, line: str) -> None:
        if line != self.last:
            console.print(line, highlight=False)
            self.last = line


def expand_globs(paths: list[Path] | None) -> list[Path]:
    """Expand glob patterns (``*``, ``?``, ``[...]``, ``**`` across folders) the way a shell with globstar
    would, so a quoted pattern works in any shell; a pattern that matches nothing is an error."""
    import glob

    out: list[Path] = []
    for p in paths or []:
        text = str(p)
        if not any(c in text for c in "*?["):
            out.append(p)
            continue
        matches = sorted(glob.glob(text, recursive=True))
        if not matches:
            raise fail(f"no file matches {text}")
        out.extend(Path(m) for m in matches)
    return out


DetectorsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--detectors",
        help="Registered detector to run over this input (repeatable; `healthsec detectors list` names them; "
        "default: this command's own detector).",
    ),
]


def file_engine(names: list[str] | None, default: str, kinds: set[str], **kwargs: Any) -> Engine:
    """The engine a file command runs (see :func:`healthsec.pipeline.file_engine`); a bad choice fails."""
    from healthsec.config import ConfigError
    from healthsec.pipeline import DetectorChoiceError
    from healthsec.pipeline import file_engine as build

    try:
        return build(names or [default], kinds, **kwargs)
    except (DetectorChoiceError, ConfigError) as exc:
        raise fail(str(exc)) from None


def report_failures(failures: Sequence[DetectorFailure]) -> None:
    """Events a detector raised on (the others went on): one line each, at most ten."""
    for f in failures[:10]:
        err_console.print(
            f"[yellow]detector failed[/] {f.detector} on event {f.event_id}: {f.reason}",
            highlight=False,
        )
    if len(failures) > 10:
        err_console.print(f"[yellow]... and {len(failures) - 10} more detector failure(s)[/]")
