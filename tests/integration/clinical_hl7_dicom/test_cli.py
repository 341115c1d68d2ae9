"""The CLI as a user runs it: ``healthsec scan hl7|dicom`` and ``healthsec listen hl7|dicom`` on port 0."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from hl7.client import MLLPClient
from pynetdicom import AE

from healthsec.ingest.hl7 import ack_code_of
from healthsec.store import Store
from healthsec.testing.dicom_attacks import pe_polyglot

pytestmark = pytest.mark.integration


def run(*args: str, env_db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "healthsec.cli", *args, "--db", str(env_db)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_scan_hl7_reports_broken_samples_and_stores_alerts(shared_data: Path, tmp_path: Path) -> None:
    examples = shared_data / "hl7v2-fhir-samples-cdc" / "examples"
    db = tmp_path / "h.db"
    res = run(
        "scan", "hl7", str(examples / "Test" / "Message"), "--baseline", str(examples / "CA"), env_db=db
    )
    assert res.returncode == 0, res.stderr
    assert "empty.hl7: no HL7 message (no MSH segment) in file" in res.stdout
    assert re.search(r"\b7 messages .*; 4 malformed; 1 parse errors", res.stdout), res.stdout
    store = Store.open(str(db))
    try:
        alerts = store.alerts.all()
        assert sum(a.detector == "hl7.malformed" for a in alerts) == 4
        assert store.events.count("clinical") == 7
        ev = next(iter(store.events.iter("clinical")))
        assert "text" not in ev.fields  # raw messages (PHI) are not stored
    finally:
        store.close()


def test_scan_dicom_flags_polyglot_and_truncated(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "dicom-samples" / "pydicom_test_files"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "invoice.dcm").write_bytes(pe_polyglot((src / "CT_small.dcm").read_bytes()))
    (tmp_path / "in" / "MR_truncated.dcm").write_bytes((src / "MR_truncated.dcm").read_bytes())
    (tmp_path / "in" / "MR_small.dcm").write_bytes((src / "MR_small.dcm").read_bytes())
    (tmp_path / "in" / "notes.txt").write_text("not dicom")
    res = run("scan", "dicom", str(tmp_path / "in"), "--json", env_db=tmp_path / "d.db")
    assert res.returncode == 0, res.stderr
    assert "3 DICOM files inspected; 2 with findings; 1 not DICOM" in res.stdout
    assert "notes.txt: not a DICOM file" in res.stdout
    assert '"detector":"dicom.polyglot"' in res.stdout and "CVE-2019-11687" in res.stdout
    assert '"detector":"dicom.malformed"' in res.stdout


def _start(args: list[str], db: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "healthsec.cli", *args, "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # the listener's engine with the clinical detectors only (the SigmaHQ compile takes minutes on CI)
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HEALTHSEC_DETECTORS": '["hl7", "dicom"]'},
    )
    assert proc.stdout is not None
    for _ in range(20):
        line = proc.stdout.readline()
        m = re.search(r"127\.0\.0\.1:(\d+)", line)
        if m:
            return proc, int(m.group(1))
    proc.kill()
    raise AssertionError("listener did not report its port")


def test_listen_hl7_acks_nacks_and_counts(shared_data: Path, tmp_path: Path) -> None:
    msg = (
        shared_data
        / "hl7v2-fhir-samples-cdc"
        / "examples"
        / "Ochsner"
        / "001_Ochsner_OML_O21_0_initial_message.hl7"
    )
    text = msg.read_text().replace("\n", "\r")
    proc, port = _start(
        ["listen", "hl7", "--port", "0", "--duration", "4", "--status-every", "1"], tmp_path / "l.db"
    )
    try:
        with MLLPClient("127.0.0.1", port) as client:
            good = client.send_message(text).decode().strip("\x0b\x1c\r")
            bad = client.send_message("MSH|").decode().strip("\x0b\x1c\r")
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert ack_code_of(good) == "AA" and ack_code_of(bad) == "AR"
    assert "messages=2 AA=1 AE=0 AR=1" in out, out + err
    # alerts come from the engine behind the listener once its learning period is over (default one
    # day): tests/integration/engine/test_listeners.py runs it with a short one


def test_listen_dicom_logs_operations(shared_data: Path, tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    proc, port = _start(["listen", "dicom", "--port", "0", "--duration", "4", "--status-every", "1"], db)
    try:
        ae = AE(ae_title="MODALITY1")
        ae.add_requested_context("1.2.840.10008.1.1")
        ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2")
        assoc = ae.associate("127.0.0.1", port, ae_title="HEALTHSEC")
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0
        ds = pydicom.dcmread(shared_data / "dicom-samples" / "pydicom_test_files" / "CT_small.dcm")
        assert assoc.send_c_store(ds).Status == 0
        assoc.release()
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert "C-ECHO=1 C-STORE=1" in out, out + err
    store = Store.open(str(db))
    try:
        ops = sorted(e.message_type for e in store.events.iter("clinical"))
        assert ops == ["A-ASSOCIATE", "C-ECHO", "C-STORE"]
    finally:
        store.close()


def test_listen_hl7_prints_status_on_change_and_a_summary_on_sigterm(tmp_path: Path) -> None:
    import signal
    import time

    proc, _port = _start(["listen", "hl7", "--port", "0", "--status-every", "0.2"], tmp_path / "s.db")
    try:
        time.sleep(2.0)  # about ten status checks with nothing received: one line at most
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    status_lines = [
        line for line in out.splitlines() if "messages=" in line and not line.startswith("stopped")
    ]
    assert len(status_lines) <= 1, out
    assert "stopped: connections=0 messages=0" in out, out + err


@pytest.mark.parametrize("kind", ["hl7", "dicom"])
def test_listen_on_a_port_in_use_is_one_error_line(kind: str, tmp_path: Path) -> None:
    """A port another process holds: one line naming it and exit 1, not a traceback."""
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        res = run("listen", kind, "--port", str(port), "--duration", "5", env_db=tmp_path / "s.db")
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ], res.stderr
    assert "listening" not in res.stdout, res.stdout
