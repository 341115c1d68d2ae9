"""Bus security settings: a non-loopback NATS needs TLS, credentials and a signing key; envelope HMAC."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from healthsec.app import nats_config
from healthsec.bus.envelope import SIGNATURE_HEADER, sign_envelope, verify_envelope
from healthsec.config import ConfigError, load_settings, nats_url_is_loopback


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("nats://127.0.0.1:4222", True),
        ("nats://localhost:4222", True),
        ("nats://[::1]:4222", True),
        ("tls://127.0.0.2:4222", True),
        ("nats://127.0.0.1:4222,nats://10.0.0.5:4222", False),
        ("nats://nats.hospital.example:4222", False),
        ("nats://u:p@10.0.0.5:4222", False),
    ],
)
def test_loopback_detection(url: str, loopback: bool) -> None:
    assert nats_url_is_loopback(url) is loopback


def test_non_loopback_without_tls_credentials_or_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TLS") as info:
        load_settings(nats_url="nats://10.0.0.5:4222")
    assert "credentials" in str(info.value)
    assert "bus_signing_key_file" in str(info.value)
    secret = tmp_path / "secret"
    secret.write_text("x" * 40)
    # TLS but no credentials or key: still refused
    with pytest.raises(ConfigError, match="credentials"):
        load_settings(nats_url="tls://nats.hospital.example:4222")
    ok = load_settings(
        nats_url="tls://nats.hospital.example:4222",
        nats_user="healthsec",
        nats_password_file=secret,
        bus_signing_key_file=secret,
    )
    cfg = nats_config(ok)
    assert isinstance(cfg.connect_options()["tls"], ssl.SSLContext)
    assert cfg.password == "x" * 40
    assert "x" * 40 not in repr(cfg)


def test_user_needs_password_file_and_short_signing_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nats_password_file"):
        load_settings(nats_user="healthsec")
    short = tmp_path / "short.key"
    short.write_text("too-short")
    with pytest.raises(ConfigError, match="at least 32 bytes") as info:
        nats_config(load_settings(bus_signing_key_file=short))
    assert "too-short" not in str(info.value)


def test_signature_covers_the_exact_bytes() -> None:
    key = b"k" * 32
    data = b'{"v":1,"org":"a","events":[]}'
    headers = {SIGNATURE_HEADER: sign_envelope(key, data)}
    assert verify_envelope(key, data, headers)
    assert not verify_envelope(key, data.replace(b'"a"', b'"b"'), headers)
    assert not verify_envelope(b"j" * 32, data, headers)
    assert not verify_envelope(key, data, None)
    assert not verify_envelope(key, data, {SIGNATURE_HEADER: "v1=" + "0" * 64})
    assert verify_envelope(None, data, None)  # no key configured (loopback only): not checked
