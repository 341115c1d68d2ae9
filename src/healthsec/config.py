"""One Settings object (pydantic-settings): file, environment (HEALTHSEC_*), flags; unknown keys fail."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from platformdirs import user_data_dir
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_db_url() -> str:
    """The embedded default: a SQLite file in the user's data directory."""
    return f"sqlite:///{Path(user_data_dir('healthsec')) / 'healthsec.db'}"


class ConfigError(ValueError):
    """Settings are wrong; the message names every bad key."""


class Settings(BaseSettings):
    """Everything healthsec can be configured with, validated at start-up."""

    model_config = SettingsConfigDict(env_prefix="HEALTHSEC_", extra="forbid", frozen=True)

    db: str = Field(default_factory=default_db_url, description="SQLAlchemy URL or SQLite path")
    org: str = Field(default="local", min_length=1, max_length=64, description="this organisation's id")
    bus: Literal["memory", "nats"] = Field(default="memory", description="memory (one machine) or nats")
    nats_url: str = "nats://127.0.0.1:4222"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # --- service (healthsec serve / worker) ---
    api_host: str = Field(default="127.0.0.1", description="address the REST API binds")
    api_port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, description="larger requests get 413")
    max_batch_events: int = Field(default=10_000, ge=1, description="events per ingest request")
    token_ttl_days: int = Field(default=90, ge=1, le=3650, description="default lifetime of new API tokens")
    nats_stream: str = Field(default="HEALTHSEC_EVENTS", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    nats_subject: str = Field(
        default="healthsec", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="subject prefix"
    )
    nats_durable: str = Field(default="workers", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    worker_max_attempts: int = Field(default=5, ge=1, le=100, description="deliveries before dead-letter")
    worker_fetch: int = Field(default=16, ge=1, le=1000, description="messages a worker takes at once")
    worker_ack_wait_s: float = Field(default=30.0, gt=0, description="redelivery after this without an ack")
    sharing_secret_file: Path | None = Field(
        default=None, description="file with the sharing community secret (without it TAXII serves nothing)"
    )
    taxii_public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="public base URL TAXII discovery announces (else relative URLs; never the Host header)",
    )
    # --- live sources run by `healthsec serve` (off unless set) ---
    mqtt_url: str | None = Field(default=None, description="mqtt://host:port of the telemetry broker")
    mqtt_topics: tuple[str, ...] = ("healthsec/telemetry/#",)
    mqtt_username: str | None = None
    mqtt_password_file: Path | None = Field(default=None, description="file holding the MQTT password")
    hl7_listen: str | None = Field(default=None, description="host:port for the HL7 MLLP listener")
    dicom_listen: str | None = Field(default=None, description="host:port for the DICOM monitor SCP")
    live_org: str | None = Field(default=None, description="org of live-source events (default: org)")
    detectors: tuple[str, ...] = Field(
        default=(), description="'module:factory' import paths of AlertingDetectors run on ingested events"
    )


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read settings from a TOML file (optional), the environment and explicit overrides, in that order."""
    values: dict[str, Any] = {}
    path = config_file or (Path(os.environ["HEALTHSEC_CONFIG"]) if "HEALTHSEC_CONFIG" in os.environ else None)
    if path is not None:
        try:
            values.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    secrets_dir = os.environ.get("HEALTHSEC_SECRETS_DIR")
    for key in ("db", "nats_url"):
        # secrets from files: HEALTHSEC_DB_FILE=/run/secrets/db, or a file named after the key in
        # HEALTHSEC_SECRETS_DIR; an explicit value (flag, environment, config) still wins.
        file_path = os.environ.get(f"HEALTHSEC_{key.upper()}_FILE") or (
            str(Path(secrets_dir) / key) if secrets_dir and (Path(secrets_dir) / key).is_file() else None
        )
        if file_path and key not in values and f"HEALTHSEC_{key.upper()}" not in os.environ:
            try:
                values[key] = Path(file_path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"cannot read secret file for {key}: {exc}") from None
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '?'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
