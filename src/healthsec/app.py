"""The composition root: builds adapters from Settings; shared by the API, the CLI and workers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from healthsec.bus import InProcessBus
from healthsec.config import Settings, env_var, load_settings, read_secret_file

if TYPE_CHECKING:
    from healthsec.bus.nats import NatsConfig
    from healthsec.store import Store


def resolve_db(db: str | None) -> str:
    """``--db`` wins, then ``HEALTHSEC_DB``, then the embedded default."""
    if db:
        return db
    return env_var("HEALTHSEC_DB") or load_settings().db


def open_store(db: str | None = None, org: str | None = None, settings: Settings | None = None) -> Store:
    """Open (and migrate) the store named by ``db`` or the settings."""
    from healthsec.store import Store  # SQLAlchemy loads here, not when the CLI starts

    settings = settings or load_settings()
    return Store.open(resolve_db(db), org or settings.org)


def make_bus(settings: Settings | None = None) -> InProcessBus:
    """The in-process bus (the single-machine default); with ``bus = "nats"`` see :func:`nats_config`."""
    del settings  # the NATS transport is asynchronous: the API and workers build it from nats_config()
    return InProcessBus()


def nats_config(settings: Settings | None = None) -> NatsConfig:
    """The JetStream names and limits the settings ask for (used by the API and ``healthsec worker``)."""
    from healthsec.bus.nats import NatsConfig

    s = settings or load_settings()
    password = s.nats_password_file
    return NatsConfig(
        url=s.nats_url,
        stream=s.nats_stream,
        prefix=s.nats_subject,
        durable=s.nats_durable,
        max_attempts=s.worker_max_attempts,
        ack_wait=s.worker_ack_wait_s,
        fetch=s.worker_fetch,
        connect_timeout=s.nats_connect_timeout_s,
        publish_deadline=s.bus_publish_deadline_s,
        user=s.nats_user,
        password=read_secret_file(password, "nats_password_file").decode() if password else None,
        nkey_seed_file=str(s.nats_nkey_seed_file) if s.nats_nkey_seed_file else None,
        tls_ca_file=str(s.nats_tls_ca_file) if s.nats_tls_ca_file else None,
        signing_key=(
            read_secret_file(s.bus_signing_key_file, "bus_signing_key_file", 32)
            if s.bus_signing_key_file
            else None
        ),
    )
