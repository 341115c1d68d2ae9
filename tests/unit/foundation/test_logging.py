"""Logs are JSON and carry neither PHI nor secrets, whatever a caller passes in."""

from __future__ import annotations

import json
import logging

import pytest

from healthsec.observability import configure_logging, redact


def test_redact_removes_secrets_and_phi() -> None:
    text = redact("db postgresql://svc:hunter2@10.0.0.5/ehr token=abc123 Patient: John Smith MRN: 884422")
    assert "hunter2" not in text
    assert "abc123" not in text
    assert "John Smith" not in text
    assert "884422" not in text


def test_logging_chain_redacts_messages_args_and_exceptions(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    log = logging.getLogger("healthsec.test")
    log.info("reading record of %s, DOB: 1961-04-02", "Patient: Jane Doe")
    try:
        raise ValueError("bad password=s3cr3t for MRN: 123456")
    except ValueError:
        log.exception("failed")
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    blob = json.dumps(lines)
    assert lines[0]["level"] == "INFO"
    for raw in ("Jane Doe", "1961-04-02", "s3cr3t", "123456"):
        assert raw not in blob
    configure_logging("WARNING")
