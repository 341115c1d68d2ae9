"""The live MLLP and DICOM listeners detect through the one engine, not through detectors of their own.

A real client (python-hl7's MLLP client, a pynetdicom association) talks to `healthsec listen hl7|dicom`
run as a user runs it, with the registry's clinical detectors (the default profile minus the host-log
and flow ones: compiling the SigmaHQ set takes minutes on a loaded CI machine and reads no clinical
event) and a learning period of a fraction of a second.
The client sends a first batch, falls quiet (the engine runs the open hour), then sends the attack. The
same stored events, handed to a fresh in-process engine in the same two batches, give exactly the
alerts the listener's run stored: the listener adds none and loses none.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pydicom
import pytest
from hl7.client import MLLPClient
from pynetdicom import AE

from healthsec.config import load_settings
from healthsec.pipeline import Detection
from healthsec.store import Store

pytestmark = pytest.mark.integration
CLINICAL = ("hl7", "dicom", "clinical.access", "clinical.telemetry")
ENGINE = {
    "HEALTHSEC_LEARNING_HOURS": "0.0001",
    "HEALTHSEC_DETECTION_IDLE_S": "2",  # one association's events stay one step on a loaded machine
    "HEALTHSEC_DETECTORS": json.dumps(CLINICAL),
}
QUIET = 5.0  # longer than detection_idle_s: the engine runs the first batch before the attack arrives


def _listen(args: list[str], db: Path) -> tuple[subprocess.Popen[str], int]:
    env = {"COLUMNS": "200", "PATH": "/usr/bin:/bin", **ENGINE}
    proc = subprocess.Popen(
        [sys.executable, "-m", "healthsec.cli", "listen", *args, "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=os.getcwd(),
    )
    assert proc.stdout is not None
    for _ in range(40):
        m = re.search(r"127\.0\.0\.1:(\d+)", proc.stdout.readline())
        if m:
            return proc, int(m.group(1))
    proc.kill()
    raise AssertionError("listener did not report its port: " + (proc.stderr.read() if proc.stderr else ""))


def _same_alerts_in_process(db: Path, split: datetime, tmp_path: Path) -> tuple[set[str], set[str]]:
    """(alerts the listener's run stored, alerts a fresh engine gives on its events in the same batches)."""
    live = Store.open(str(db))
    try:
        events = sorted(
            (e for kind in ("clinical",) for e in live.events.iter(kind)), key=lambda e: (e.ts, e.id)
        )
        got = {a.id for a in live.alerts.all()}
    finally:
        live.close()
    ref_db = tmp_path / "ref.db"
    settings = load_settings(db=str(ref_db), learning_hours=0.0001, detection_idle_s=2, detectors=CLINICAL)
    ref = Store.open(str(ref_db))
    try:
        engine = Detection(ref, settings, owner="ref")
        for batch in ([e for e in events if e.ts < split], [e for e in events if e.ts >= split]):
            engine.accept(ref.org, batch)
            engine.tick(final=True)
        return got, {a.id for a in ref.alerts.all()}
    finally:
        ref.close()


def _run(proc: subprocess.Popen[str], first: Callable[[], None], attack: Callable[[], None]) -> datetime:
    try:
        first()
        time.sleep(QUIET)
        split = datetime.now(UTC)
        attack()
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, out + err
    return split


def test_listen_hl7_alerts_are_the_engines(shared_data: Path, tmp_path: Path) -> None:
    sample = shared_data / "hl7v2-fhir-samples-cdc" / "examples" / "Ochsner"
    text = (sample / "001_Ochsner_OML_O21_0_initial_message.hl7").read_text().replace("\n", "\r")
    db = tmp_path / "hl7.db"
    proc, port = _listen(["hl7", "--port", "0", "--duration", "8", "--status-every", "0.5"], db)

    def first() -> None:
        with MLLPClient("127.0.0.1", port) as client:
            client.send_message(text)

    def attack() -> None:
        with MLLPClient("127.0.0.1", port) as client:
            client.send_message("MSH|")  # malformed: AR, and an hl7.malformed alert from the engine

    split = _run(proc, first, attack)
    got, expected = _same_alerts_in_process(db, split, tmp_path)
    assert got == expected
    live = Store.open(str(db))
    try:
        assert "hl7.malformed" in {a.detector for a in live.alerts.all()}
        assert all(a.tactics for a in live.alerts.all()), "ATT&CK enrichment as in the engine"
    finally:
        live.close()


def test_listen_dicom_alerts_are_the_engines(shared_data: Path, tmp_path: Path) -> None:
    ct = pydicom.dcmread(shared_data / "dicom-samples" / "pydicom_test_files" / "CT_small.dcm")
    db = tmp_path / "dicom.db"
    proc, port = _listen(["dicom", "--port", "0", "--duration", "10", "--status-every", "0.5"], db)

    def associate(caller: str, send: Callable[[object], None]) -> None:
        ae = AE(ae_title=caller)
        ae.add_requested_context("1.2.840.10008.1.1")
        ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2")
        assoc = ae.associate("127.0.0.1", port, ae_title="HEALTHSEC")
        assert assoc.is_established
        send(assoc)
        assoc.release()

    def first() -> None:
        associate("MODALITY1", lambda a: a.send_c_store(ct))  # type: ignore[attr-defined]

    def attack() -> None:
        associate("VSCAN", lambda a: a.send_c_store(ct))  # type: ignore[attr-defined]  # a caller never seen

    split = _run(proc, first, attack)
    got, expected = _same_alerts_in_process(db, split, tmp_path)
    assert got == expected
    assert got, "the unknown caller raised alerts"
    live = Store.open(str(db))
    try:
        assert {a.detector for a in live.alerts.all()} & {"dicom", "dicom.misuse"}
    finally:
        live.close()
