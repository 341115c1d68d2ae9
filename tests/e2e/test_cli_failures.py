"""The CLI fails loudly: one error line and a non-zero exit for an unreachable store, a --db typo, a run
that read no record; quoted glob patterns are expanded by the CLI itself (issue 19, item 3)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from healthsec.cli import _unreachable, app

SAMPLE = "rules/windows/process_creation/proc_creation_win_bitsadmin_download"


def _invoke(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, [line for line in result.output.splitlines() if line.strip()]


@pytest.fixture
def rule(shared_data: Path) -> Path:
    return shared_data / "sigma-rules" / f"{SAMPLE}.yml"


def test_db_path_whose_folder_is_missing_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "typo" / "dir" / "x.db"
    code, lines = _invoke("alerts", "list", "--db", str(target))
    assert code == 1
    assert lines == [f"error: cannot open database {target}: directory {target.parent} does not exist"]
    assert not (tmp_path / "typo").exists()


def test_detect_logs_on_a_file_without_one_log_record_fails(
    tmp_path: Path, shared_data: Path, rule: Path
) -> None:
    nsl = shared_data / "nsl-kdd" / "KDDTest-21.txt.gz"
    code, lines = _invoke(
        "detect", "logs", str(nsl), "--rules", str(rule), "--out", str(tmp_path / "a.jsonl"), "--no-store"
    )
    assert code == 1, lines
    assert lines[-1].startswith("error: no auto record could be read from"), lines


def test_quoted_glob_patterns_are_expanded_by_the_cli(tmp_path: Path, shared_data: Path, rule: Path) -> None:
    pattern = (
        shared_data / "sigma-rules" / "regression_data" / "rules" / "**" / "*bitsadmin_download" / "*.evtx.gz"
    )
    out = tmp_path / "a.jsonl"
    code, lines = _invoke(
        "detect", "logs", str(pattern), "--rules", str(rule), "--out", str(out), "--no-store"
    )
    assert code == 0, lines
    assert out.read_text().count("\n") >= 1
    code, lines = _invoke(
        "detect", "logs", str(tmp_path / "none-*.evtx"), "--rules", str(rule), "--out", str(out)
    )
    assert code == 1
    assert lines == [f"error: no file matches {tmp_path / 'none-*.evtx'}"]


def test_an_unreachable_database_mid_command_is_one_line() -> None:
    import psycopg
    from sqlalchemy.exc import OperationalError

    from healthsec.store import StoreError

    refused = psycopg.OperationalError(
        "connection to server at 127.0.0.1 port 1 failed: Connection refused\nmore"
    )
    exc = OperationalError("SELECT 1", {}, refused)
    assert _unreachable(exc) == (
        "database unavailable: connection to server at 127.0.0.1 port 1 failed: Connection refused"
    )
    assert _unreachable(StoreError("cannot open database x: y")) == "cannot open database x: y"
    assert _unreachable(ValueError("a bug")) is None  # bugs keep their traceback


@pytest.mark.parametrize("command", [["share", "export"], ["share", "stats"]])
def test_output_files_are_named_with_out_everywhere(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--out" in result.output and "--to" in result.output  # the old name stays as an alias


@pytest.mark.parametrize(
    ("option", "kind", "name"),
    [
        ("HEALTHSEC_HL7_LISTEN", "tcp", "HL7 listener"),
        ("HEALTHSEC_DICOM_LISTEN", "tcp", "DICOM monitor"),
        ("HEALTHSEC_SYSLOG_LISTEN", "udp", "syslog receiver"),
        ("HEALTHSEC_NETFLOW_LISTEN", "udp", "NetFlow collector"),
    ],
)
def test_serve_with_a_live_source_on_a_port_in_use_is_one_error_line(
    tmp_path: Path, option: str, kind: str, name: str
) -> None:
    """A live source's port another process holds: one line naming source and port, exit 1, no server."""
    import socket

    sock_type = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, sock_type) as held:
        held.bind(("127.0.0.1", 0))
        if kind == "tcp":
            held.listen()
        port = held.getsockname()[1]
        result = CliRunner().invoke(
            app,
            ["serve", "--port", "0", "--db", str(tmp_path / "s.db")],
            env={option: f"127.0.0.1:{port}"},
        )
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [f"error: cannot start the {name} on 127.0.0.1:{port}: Address already in use"], lines
