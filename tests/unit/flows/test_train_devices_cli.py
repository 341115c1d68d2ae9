"""`healthsec train devices --trial-pattern`: a bad pattern and a file without a trial are clear errors."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from healthsec.cli import app


def test_a_bad_trial_pattern_is_refused_before_any_capture_is_read(tmp_path: Path) -> None:
    cap = tmp_path / "1_1.pcap"
    cap.write_bytes(b"")
    res = CliRunner().invoke(
        app, ["train", "devices", str(cap), "--model", str(tmp_path / "m"), "--trial-pattern", "_(\\d+"]
    )
    assert res.exit_code == 1
    assert "--trial-pattern is not a regular expression" in res.output


def test_captures_without_a_trial_are_skipped_by_name(shared_data: Path, tmp_path: Path) -> None:
    root = shared_data / "medical-device-traffic-unr" / "pcaps"
    caps = [root / "kardiamobile" / "2_1.pcap.gz", root / "babymonitor" / "wifi" / "2_1.pcap.gz"]
    res = CliRunner().invoke(
        app,
        [
            "train",
            "devices",
            *map(str, caps),
            "--model",
            str(tmp_path / "m"),
            "--trial-pattern",
            "trial(\\d+)",
        ],
    )
    assert res.exit_code == 1
    assert "2_1.pcap.gz: no trial in the file name" in res.output
