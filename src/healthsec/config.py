"""One Settings object (pydantic-settings): file, environment (HEALTHSEC_*), flags; unknown keys fail."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from platformdirs import user_data_dir
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_db_url() -> str:
    """The embedded default: a SQLite file in the user's data directory."""
    return f"sqlite:///{Path(user_data_dir('healthsec')) / 'healthsec.db'}"


def default_shared_data() -> Path | None:
    """``../shared/data`` seen from the working directory (a checkout beside the shared data), if there."""
    candidate = Path.cwd().parent / "shared" / "data"
    return candidate.resolve() if candidate.is_dir() else None


class ConfigError(ValueError):
    """Settings are wrong; the message names every bad key."""


class OutputDestination(BaseModel):
    """One SIEM destination for alerts and incidents (docs/siem.md); each goes through the outbox."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9_-]{1,28}$", description="outbox channel out:<name>")
    transport: Literal["syslog", "elastic", "hec", "http"]
    format: Literal["ocsf", "ecs", "cef"] = "ecs"
    host: str | None = Field(default=None, description="syslog receiver host")
    port: int | None = Field(default=None, ge=1, le=65535)
    protocol: Literal["udp", "tcp", "tls"] = "tls"
    url: str | None = Field(
        default=None, pattern=r"^https?://[^\s]+$", description="elastic/hec/http base URL"
    )
    index: str | None = Field(default=None, max_length=255)
    token_file: Path | None = Field(default=None, description="API key (elastic), HEC token, bearer token")
    ca_file: Path | None = Field(default=None, description="CA bundle for TLS receivers")
    tls_verify: bool = True
    findings: tuple[Literal["alert", "incident"], ...] = ("alert", "incident")
    min_severity: Literal["info", "low", "medium", "high", "critical"] = "info"

    @model_validator(mode="after")
    def _complete(self) -> OutputDestination:
        if self.transport == "syslog" and (not self.host or not self.port):
            raise ValueError(f"output {self.name}: syslog needs host and port")
        if self.transport != "syslog" and not self.url:
            raise ValueError(f"output {self.name}: {self.transport} needs url")
        if self.format == "cef" and self.transport in ("elastic", "http"):
            raise ValueError(f"output {self.name}: CEF is a line format; use syslog or hec")
        return self


class Settings(BaseSettings):
    """Everything healthsec can be configured with, validated at start-up."""

    model_config = SettingsConfigDict(env_prefix="HEALTHSEC_", extra="forbid", frozen=True)

    db: str = Field(default_factory=default_db_url, description="SQLAlchemy URL or SQLite path")
    org: str = Field(default="local", min_length=1, max_length=64, description="this organisation's id")
    bus: Literal["memory", "nats"] = Field(default="memory", description="memory (one machine) or nats")
    nats_url: str = "nats://127.0.0.1:4222"
    # --- bus security (docs/service.md "Bus security"): NATS credentials, TLS, signed envelopes ---
    nats_user: str | None = Field(
        default=None, max_length=256, description="NATS user (with a password file)"
    )
    nats_password_file: Path | None = Field(default=None, description="file holding the NATS password")
    nats_nkey_seed_file: Path | None = Field(
        default=None, description="file holding the NATS NKey seed (SU...)"
    )
    nats_tls_ca_file: Path | None = Field(
        default=None, description="CA bundle that signed the NATS certificate"
    )
    bus_signing_key_file: Path | None = Field(
        default=None,
        description="HMAC key (>= 32 bytes) shared by serve and workers: workers take only signed envelopes",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # --- service (healthsec serve / worker) ---
    api_host: str = Field(default="127.0.0.1", description="address the REST API binds")
    api_port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, description="larger requests get 413")
    api_docs: bool = Field(
        default=False,
        description="serve /docs and /redoc (their scripts come from a CDN); /openapi.json always",
    )
    max_batch_events: int = Field(default=10_000, ge=1, description="events per ingest request")
    token_ttl_days: int = Field(default=90, ge=1, le=3650, description="default lifetime of new API tokens")
    nats_stream: str = Field(default="HEALTHSEC_EVENTS", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    nats_subject: str = Field(
        default="healthsec", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="subject prefix"
    )
    nats_durable: str = Field(default="workers", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    worker_max_attempts: int = Field(default=5, ge=1, le=100, description="deliveries before dead-letter")
    worker_fetch: int = Field(default=16, ge=1, le=1000, description="messages a worker takes at once")
    worker_ack_wait_s: float = Field(
        default=10.0, gt=0, description="redelivery after this without an ack (busy workers send heartbeats)"
    )
    nats_connect_timeout_s: float = Field(
        default=5.0, gt=0, le=300, description="a broker unreachable this long at start stops the process"
    )
    bus_publish_deadline_s: float = Field(
        default=10.0, ge=0, le=300, description="the API retries a publish this long, then answers 503"
    )
    retry_after_s: int = Field(default=5, ge=1, le=3600, description="Retry-After of a 503 (dependency down)")
    # --- response: cases, notifications, breach clocks (docs/respond.md) ---
    console_url: str | None = Field(default=None, description="base URL of the console; messages link there")
    jurisdictions: tuple[str, ...] = Field(default=(), description="this org's: eu, eu:<member state>, us")
    org_jurisdictions: dict[str, tuple[str, ...]] = Field(default_factory=dict, description="per other org")
    breach_contact: str | None = Field(default=None, description="contact point printed in breach drafts")
    breach_tz: str | None = Field(
        default=None, description="IANA zone of the org's calendar (e.g. Europe/Berlin)"
    )
    notify_webhook_url: str | None = None
    notify_webhook_secret_file: Path | None = Field(default=None, description="HMAC key for webhook bodies")
    notify_smtp_host: str | None = None
    notify_smtp_port: int = Field(default=25, ge=1, le=65535)
    notify_smtp_from: str | None = None
    notify_email_to: tuple[str, ...] = ()
    notify_apprise_urls: tuple[str, ...] = Field(default=(), description="apprise URLs (chat, pager)")
    notify_max_attempts: int = Field(default=8, ge=1, le=100, description="deliveries before dead-letter")
    outputs: tuple[OutputDestination, ...] = Field(
        default=(), description="SIEM destinations ([[outputs]] tables; docs/siem.md)"
    )
    playbook_dirs: tuple[Path, ...] = Field(default=(), description="extra playbook folders (YAML)")
    containment_nac_url: str | None = Field(default=None, description="firewall/NAC API the plans address")
    containment_ldap_base_dn: str | None = Field(default=None, description="where staff accounts live")
    containment_proxy_url: str | None = Field(default=None, description="healthsec clinical proxy admin URL")
    containment_live: tuple[Literal["nftables", "ldap", "nac-http", "clinical-proxy-http"], ...] = Field(
        default=(), description="adapters that run an approved plan (else dry-run: the plan is only recorded)"
    )
    containment_nft_table: str = Field(
        default="inet healthsec", pattern=r"^(ip|ip6|inet|bridge|netdev) [A-Za-z0-9_]{1,32}$"
    )
    containment_nft_set: str = Field(default="blocklist", pattern=r"^[A-Za-z0-9_]{1,32}$")
    containment_http_token_file: Path | None = Field(
        default=None, description="bearer token for the NAC / clinical proxy API"
    )
    containment_ldap_url: str | None = Field(default=None, pattern=r"^ldaps?://[^\s/?#]+/?$")
    containment_ldap_bind_dn: str | None = None
    containment_ldap_password_file: Path | None = Field(default=None, description="the bind DN's password")
    sharing_secret_file: Path | None = Field(
        default=None, description="file with the sharing community secret (without it TAXII serves nothing)"
    )
    # --- patients: one keyed pseudonym everywhere (privacy.pseudonymise.patient_pseudonym) ---
    patient_key_file: Path | None = Field(
        default=None,
        description="file with the patient-pseudonym secret (>= 16 bytes); without it alerts name no patient",
    )
    patient_id_authority: str | None = Field(
        default=None,
        max_length=200,
        description="this hospital's MRN assigning authority (HL7 CX.4 / DICOM IssuerOfPatientID): ids "
        "it issues join ids that name no authority",
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
    syslog_listen: str | None = Field(default=None, description="host:port for the syslog receiver (UDP+TCP)")
    netflow_listen: str | None = Field(default=None, description="host:port for the NetFlow/IPFIX collector")
    dicom_idle_s: float = Field(
        default=5.0, gt=0, le=300, description="seconds a DICOM peer has to send its association request"
    )
    dicom_max_per_client: int = Field(default=4, ge=1, le=1000, description="DICOM connections per address")
    dicom_max_pdu_bytes: int = Field(
        default=4 * 1024 * 1024, ge=16 * 1024, le=256 * 1024 * 1024, description="largest DICOM PDU read"
    )
    live_org: str | None = Field(default=None, description="org of live-source events (default: org)")
    # --- threat intelligence (healthsec intel): nothing is fetched unless a URL is configured ---
    intel_provider_urls: tuple[str, ...] = Field(
        default=(),
        description="CSAF provider-metadata.json URLs that `healthsec intel poll` reads and `healthsec "
        "serve` polls every intel_poll_interval_s (empty: no polling, nothing fetched)",
    )
    intel_poll_interval_s: float = Field(
        default=6 * 3600, ge=1, le=7 * 86400, description="seconds between the service's CSAF provider polls"
    )
    intel_tagger_dir: Path | None = Field(
        default=None, description="folder of the trained ATT&CK text tagger (default: the user data folder)"
    )
    # --- detection (the engine; `healthsec detectors list` shows what runs) ---
    detectors: tuple[str, ...] = Field(
        default=(), description="registered detector names to run (empty: the default profile, all of them)"
    )
    detectors_disabled: tuple[str, ...] = Field(default=(), description="registered detectors not to run")
    detector_plugins: tuple[str, ...] = Field(
        default=(), description="'module:name' of extra DetectorSpecs to register (your own detectors)"
    )
    learning_hours: float = Field(
        default=24.0, gt=0, le=24 * 90, description="event time learnt before baseline detectors alert"
    )
    sigma_rules: tuple[Path, ...] | None = Field(
        default=None, description="Sigma rule files or folders (default: the SigmaHQ set of shared_data)"
    )
    shared_data: Path | None = Field(
        default_factory=default_shared_data,
        description="folder of external data sets (SigmaHQ rules in sigma-rules/); default ../shared/data "
        "from the working directory when it exists",
    )
    detection_lease_s: float = Field(default=30.0, gt=1, description="a worker's hold on an org's detection")
    detection_idle_s: float = Field(
        default=2.0, gt=0, description="seconds without new events before the last open hour is detected"
    )
    detection_lateness_s: float = Field(
        default=0.0,
        ge=0,
        le=24 * 3600,
        description="event time an hour stays open after a later event arrived (allowed lateness of sources)",
    )
    # --- console (the web pages at /) ---
    console_idle_minutes: int = Field(
        default=30, ge=1, le=24 * 60, description="a console session without a request ends after this"
    )
    console_max_hours: int = Field(
        default=12, ge=1, le=24 * 14, description="a console session ends this long after sign-in"
    )
    console_poll_s: float = Field(
        default=5.0, ge=0.5, le=600, description="how often open console pages fetch new incidents/alerts"
    )

    @model_validator(mode="after")
    def _live_containment_is_configured(self) -> Settings:
        """A live adapter needs where it acts (no placeholder ever reaches a network)."""
        needs = {
            "nac-http": ("containment_nac_url",),
            "clinical-proxy-http": ("containment_proxy_url",),
            "ldap": (
                "containment_ldap_url",
                "containment_ldap_base_dn",
                "containment_ldap_bind_dn",
                "containment_ldap_password_file",
            ),
        }
        ldap = urlsplit(self.containment_ldap_url or "ldaps://x")
        if ldap.scheme == "ldap" and not nats_url_is_loopback(f"nats://{ldap.hostname}"):
            raise ValueError("containment_ldap_url beyond this host must be ldaps:// (the bind password)")
        for adapter in self.containment_live:
            missing = [k for k in needs.get(adapter, ()) if getattr(self, k) is None]
            if missing:
                raise ValueError(f"containment_live {adapter} needs {', '.join(missing)}")
        return self

    @model_validator(mode="after")
    def _bus_is_not_a_door(self) -> Settings:
        """A NATS server beyond this host needs TLS, credentials and signed envelopes."""
        if self.nats_user is not None and self.nats_password_file is None:
            raise ValueError("nats_user needs nats_password_file (the password is read from a file)")
        if self.nats_password_file is not None and self.nats_user is None:
            raise ValueError("nats_password_file needs nats_user")
        if not nats_url_is_loopback(self.nats_url):
            missing = []
            if urlsplit(self.nats_url).scheme != "tls" and self.nats_tls_ca_file is None:
                missing.append("TLS (a tls:// URL or nats_tls_ca_file)")
            if self.nats_user is None and self.nats_nkey_seed_file is None and "@" not in self.nats_url:
                missing.append("credentials (nats_user + nats_password_file, or nats_nkey_seed_file)")
            if self.bus_signing_key_file is None:
                missing.append("bus_signing_key_file")
            if missing:
                raise ValueError(f"nats_url is not a loopback address: it needs {', '.join(missing)}")
        return self


def nats_url_is_loopback(url: str) -> bool:
    """True when every server of a (comma-separated) NATS URL is on this host."""
    for part in url.split(","):
        host = urlsplit(part.strip() if "://" in part else f"nats://{part.strip()}").hostname or ""
        if host == "localhost":
            continue
        try:
            if not ipaddress.ip_address(host).is_loopback:
                return False
        except ValueError:
            return False
    return True


def read_secret_file(path: Path, key: str, min_bytes: int = 1) -> bytes:
    """The stripped bytes of the secret file of setting ``key``; errors name the file, never its content."""
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {key} {path}: {exc.strerror or exc}") from None
    if len(secret) < min_bytes:
        raise ConfigError(f"{key} {path} must hold at least {min_bytes} bytes of secret, got {len(secret)}")
    return secret


def env_var(name: str) -> str | None:
    """The value of one environment variable, or None: every read of the process environment goes here.

    Settings fields are read by :func:`load_settings`; this serves the few variables that are not fields
    (per-partner TAXII secrets, the sharing key, ``$HEALTHSEC_SIGMA_RULES``, ...). A test fails if any other
    module of ``healthsec`` touches ``os.environ``.
    """
    return os.environ.get(name)


def hand_down(values: dict[str, str]) -> None:
    """Set environment variables for child processes (uvicorn workers rebuild their Settings from them)."""
    os.environ.update(values)


def load_patient_key(settings: Settings) -> bytes | None:
    """The patient-pseudonym secret from ``settings.patient_key_file`` (None when unset).

    Errors name the file, never its content; the bytes are stripped of surrounding whitespace.
    """
    path = settings.patient_key_file
    return None if path is None else read_secret_file(path, "patient_key_file", 16)


def cli_log_level() -> str:
    """The CLI's log level: ``HEALTHSEC_LOG_LEVEL`` when it names a level, else WARNING (quiet commands)."""
    level = os.environ.get("HEALTHSEC_LOG_LEVEL", "WARNING").upper()
    return level if level in ("DEBUG", "INFO", "WARNING", "ERROR") else "WARNING"


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
