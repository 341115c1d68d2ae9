"""Settings: unknown and wrong keys fail with a message naming each; secrets can come from files."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthsec.config import ConfigError, load_settings


def test_unknown_and_wrong_keys_are_named(tmp_path: Path) -> None:
    cfg = tmp_path / "healthsec.toml"
    cfg.write_text('bus = "kafka"\napi_port = 70000\ncolour = "red"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    message = str(info.value)
    assert "bus" in message
    assert "api_port" in message
    assert "colour" in message


def test_service_defaults_are_safe() -> None:
    s = load_settings()
    assert s.bus == "memory"
    assert s.api_host == "127.0.0.1"
    assert s.detectors == ()


def test_db_secret_from_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "db"
    secret.write_text("postgresql://svc:s3cret@127.0.0.1:5432/hs\n", encoding="utf-8")
    monkeypatch.delenv("HEALTHSEC_DB", raising=False)
    monkeypatch.setenv("HEALTHSEC_DB_FILE", str(secret))
    assert load_settings().db == "postgresql://svc:s3cret@127.0.0.1:5432/hs"
    monkeypatch.setenv("HEALTHSEC_DB_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="cannot read secret file for db"):
        load_settings()
