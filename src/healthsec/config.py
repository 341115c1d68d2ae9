"""One Settings object (pydantic-settings): file, environment (HEALTHSEC_*), flags; unknown keys are errors."""

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
    bus: Literal["memory"] = "memory"
    nats_url: str = "nats://127.0.0.1:4222"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


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
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '?'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
