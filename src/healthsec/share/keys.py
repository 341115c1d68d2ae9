"""Load the sharing community's secret from an environment variable or a key file; there is no default."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from healthsec.config import env_var
from healthsec.privacy.pseudonymise import MIN_SECRET_BYTES, SharingKeys

ENV_VAR = "HEALTHSEC_SHARING_KEY"
_HEX = re.compile(r"^[0-9a-fA-F]+$")


class KeyMissing(RuntimeError):
    """No usable sharing key was given; the message says where one is looked for."""


def _secret(text: bytes, where: str) -> bytes:
    value = text.strip()
    if len(value) >= 2 * MIN_SECRET_BYTES and len(value) % 2 == 0 and _HEX.match(value.decode("latin-1")):
        value = bytes.fromhex(value.decode("ascii"))
    if len(value) < MIN_SECRET_BYTES:
        raise KeyMissing(
            f"{where}: the sharing key must hold at least {MIN_SECRET_BYTES} bytes "
            f"(e.g. 64 hex characters from `openssl rand -hex 32`)"
        )
    return value


def load_keys(key_file: Path | None = None, environ: Mapping[str, str] | None = None) -> SharingKeys:
    """``--key-file`` wins, then ``$HEALTHSEC_SHARING_KEY``; the key itself is never printed or logged."""
    env: Mapping[str, str] = environ if environ is not None else {ENV_VAR: env_var(ENV_VAR) or ""}
    if key_file is not None:
        try:
            raw = key_file.read_bytes()
        except OSError as exc:
            raise KeyMissing(f"cannot read key file {key_file}: {exc.strerror}") from None
        return SharingKeys.from_secret(_secret(raw, f"key file {key_file}"))
    if env.get(ENV_VAR):
        return SharingKeys.from_secret(_secret(env[ENV_VAR].encode(), f"${ENV_VAR}"))
    raise KeyMissing(
        f"no sharing key: set ${ENV_VAR} or pass --key-file (the same key for the whole "
        f"sharing community; there is no default key)"
    )
