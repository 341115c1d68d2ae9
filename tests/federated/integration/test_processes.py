"""Coordinator and three members as separate processes over mutual TLS on loopback; one killed in round 2.

Also: a member whose certificate is revoked is refused at the door, and the survivors get the global
model registered as a candidate in their own model store, which a member then promotes itself.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

CLI = [sys.executable, "-c", "from healthsec.cli import main; main()"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "FLWR_TELEMETRY_ENABLED": "0"}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _csv(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.random(n) < 0.4
    cols = [
        np.abs(rng.normal(np.where(a, 3, 1), 1)).round(3),
        np.abs(rng.normal(np.where(a, 5000, 800), 900)).astype(int),
        np.abs(rng.normal(np.where(a, 40, 8), 6)).astype(int),
        np.where(a & (rng.random(n) < 0.7), "udp", "tcp"),
        np.where(a, "attack", "benign"),
    ]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["duration", "bytes", "pkts", "proto", "label"])
        w.writerows(zip(*cols, strict=True))


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=180)


def test_three_members_one_killed_in_round_two_and_a_revoked_one_refused(tmp_path: Path) -> None:
    for i in range(1, 3):
        _csv(tmp_path / f"m{i}.csv", 3000, i)
    _csv(tmp_path / "m3.csv", 100_000, 3)  # m3 trains for seconds: the kill lands inside round 2
    _csv(tmp_path / "m4.csv", 200, 4)
    r = _run(
        ["federate", "certs", "consortium", *[a for i in range(1, 5) for a in ("--member", f"m{i}")]],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert _run(["federate", "certs", "consortium", "--revoke", "m4"], tmp_path).returncode == 0
    r = _run(
        ["federate", "schema", "m1.csv", "-f", "csv", "--label-column", "label", "-o", "schema.json"],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    address = f"127.0.0.1:{_port()}"
    coord = subprocess.Popen(
        [*CLI, "federate", "serve", "--schema", "schema.json", "--certs", "consortium", "--address", address,
         "--rounds", "3", "--min-members", "2", "--expect", "3", "--wait", "60",
         "--round-timeout", "30", "--out", "global", "-v"],
        cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    round2 = threading.Event()

    def read() -> None:
        assert coord.stdout is not None
        for line in coord.stdout:
            lines.append(line)
            if "[ROUND 2]" in line:
                round2.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def member(name: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*CLI, "federate", "join", "--name", name, f"{name}.csv", "-f", "csv", "--label-column", "label",
             "--schema", "schema.json", "--certs", "consortium", "--address", address,
             "--out", f"cand-{name}", "--db", f"{name}.db",
             "--wait", "30"],
            cwd=tmp_path, env=ENV, stdout=(tmp_path / f"{name}.out").open("w"),
            stderr=(tmp_path / f"{name}.err").open("w"), text=True,
        )  # fmt: skip

    members = {name: member(name) for name in ("m1", "m2", "m3", "m4")}
    try:
        # kill m3 once it has its round-2 training instruction: it is then inside round 2
        deadline = time.monotonic() + 300  # generous: the shared CI machine runs at load 20-30
        # (counted on the JSON log line: Flower's own console handler prints each message a second time)
        while (tmp_path / "m3.err").read_text().count('"message": "Received: train message') < 2:
            assert time.monotonic() < deadline and members["m3"].poll() is None
            time.sleep(0.02)
        members["m3"].send_signal(signal.SIGKILL)
        assert round2.wait(timeout=120), "".join(lines)[-3000:]
        members["m4"].wait(timeout=120)
        assert members["m4"].returncode == 1
        assert "revoked" in (tmp_path / "m4.err").read_text()
        for n in ("m1", "m2"):
            members[n].wait(timeout=120)
        coord.wait(timeout=120)
        reader.join(timeout=5)
    finally:
        for p in [coord, *members.values()]:
            if p.poll() is None:
                p.kill()
    log = "".join(lines)
    (tmp_path / "coordinator.log").write_text(log)
    assert coord.returncode == 0, log[-3000:]
    assert "federation finished: 3 rounds" in log
    assert "refused connection" in log and "m4" in log and "revoked" in log
    assert "round 2: excluded update from member m3" in log, log[-3000:]
    assert "round 2: removed masks of 1 dropped member(s)" in log  # secure aggregation recovered
    assert not (tmp_path / "cand-m3").exists()
    for n in ("m1", "m2"):
        assert members[n].returncode == 0, (tmp_path / f"{n}.err").read_text()[-2000:]
        assert "candidate global model in" in (tmp_path / f"{n}.out").read_text()
        assert (tmp_path / f"cand-{n}" / "metadata.json").exists()
    assert (tmp_path / "global" / "model.npz").exists()
    assert (
        "registered model flows-federated version 1 (flows-federated-v1, candidate)"
        in (tmp_path / "m1.out").read_text()
    )
    r = _run(["models", "show", "flows-federated:1", "--db", "m1.db", "--format", "json"], tmp_path)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    fed = shown["provenance"]["federation"]
    assert shown["status"] == "candidate" and shown["formats"] == ["json", "numpy-npz"]
    assert fed["rounds"] == 3 and set(fed["members"]) >= {"m1", "m2"}
    assert 0 < fed["member_epsilon"] <= 3.0 and len(fed["member_epsilon_per_round"]) == 3
    assert fed["member_dp"]["accountant"] == "pld" and fed["member_dp"]["autoencoder_noise"] == 4.0
    assert fed["member_dp"]["sigma"] > 0
    assert 0 <= shown["metrics"]["balanced_accuracy"] <= 1 and "own" in shown["evaluation"]
    r = _run(["models", "promote", "flows-federated", "1", "--db", "m1.db"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "promoted flows-federated-v1" in r.stdout
