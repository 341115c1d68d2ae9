"""The bus is not a door (issue 18 item 11): NATS credentials, signed envelopes, known organisations only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import nkeys
import pytest
from fastapi.testclient import TestClient
from service_helpers import flow, make_tenant
from test_nats_workers import PG_URL, _detection, _ensure_nats

from healthsec.api import create_app
from healthsec.app import nats_config
from healthsec.bus.envelope import SIGNATURE_HEADER, EventBatch, encode_batch, sign_envelope
from healthsec.bus.nats import BusUnavailable, NatsConfig, connect, dead_letters, publish
from healthsec.bus.worker import Worker
from healthsec.config import load_settings
from healthsec.store import Store
from healthsec.store.auth import AuthStore
from healthsec.testing.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

NATS_SERVER = "/usr/sbin/nats-server"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "bus.key"
    path.write_text(secrets.token_hex(32))
    path.chmod(0o600)
    return path


@pytest.fixture
def signed_cfg(key_file: Path) -> Iterator[NatsConfig]:
    """A unique stream on the shared broker (4222) with the signing key of ``key_file``."""
    _ensure_nats()
    tag = uuid.uuid4().hex[:10]
    settings = load_settings(
        nats_stream=f"S_{tag}", nats_subject=f"s{tag}", nats_durable=f"w{tag}", bus_signing_key_file=key_file
    )
    cfg = nats_config(settings)
    assert cfg.signing_key is not None
    yield cfg

    async def cleanup() -> None:
        nc, js = await connect(cfg)
        for name in (cfg.stream, cfg.dead_letter_stream):
            with contextlib.suppress(Exception):
                await js.delete_stream(name)
        await nc.close()

    asyncio.run(cleanup())


@pytest.fixture
def pg() -> Iterator[Store]:
    s = Store.open(PG_URL, f"t-{uuid.uuid4().hex[:12]}")
    AuthStore(s.engine).create_org(s.org)
    yield s
    s.close()


async def _drain(worker: Worker, until: object, timeout: float = 60.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (callable(until) and until()):
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(task, 15)


def test_forged_unsigned_and_unknown_org_envelopes_are_not_stored(
    signed_cfg: NatsConfig, pg: Store, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = signed_cfg
    subject = cfg.events_subject

    def batch(prefix: str, org: str | None = None) -> tuple[bytes, str]:
        b = EventBatch(org=org or pg.org, events=[flow(i, prefix) for i in range(5)])
        return encode_batch(b), b.msg_id

    async def go() -> tuple[Worker, list[dict[str, object]]]:
        nc, js = await connect(cfg)
        # published straight to NATS, as anyone who can reach the broker could
        unsigned, mid = batch("unsigned")
        await js.publish(subject, unsigned, headers={"Nats-Msg-Id": mid})
        forged, mid = batch("forged")
        await js.publish(
            subject, forged, headers={"Nats-Msg-Id": mid, SIGNATURE_HEADER: sign_envelope(b"k" * 32, forged)}
        )
        signed_other, _ = batch("swapped")
        swapped, mid = batch("swapped-2")  # a valid signature of other bytes
        await js.publish(
            subject,
            swapped,
            headers={
                "Nats-Msg-Id": mid,
                SIGNATURE_HEADER: sign_envelope(cfg.signing_key or b"", signed_other),
            },
        )
        stranger, mid = batch("stranger", org="no-such-org")  # signed, but for no registered organisation
        await publish(js, cfg, stranger, mid)
        good, mid = batch("good")
        await publish(js, cfg, good, mid)  # signed by the configured key, like the API does
        worker = Worker(_detection(pg), cfg)
        await _drain(worker, lambda: pg.events.count() >= 5 and worker.refused_messages >= 4)
        dead = await dead_letters(js, cfg)
        await nc.close()
        return worker, dead

    with caplog.at_level(logging.WARNING, logger="healthsec.bus.worker"):
        worker, dead = asyncio.run(go())
    assert sorted(e.id for e in pg.events.iter()) == sorted(f"good-{i}" for i in range(5))
    assert pg.for_org("no-such-org").events.count() == 0
    assert worker.refused_messages == 4
    assert [d["reason"] for d in dead] == ["envelope for an unknown organisation"]  # forgeries not kept
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 4
    assert not any("no-such-org" in line or pg.org in line or "unsigned-" in line for line in refusals)


def test_api_signs_and_worker_accepts(signed_cfg: NatsConfig, key_file: Path, pg: Store) -> None:
    tenant = make_tenant(pg, f"{pg.org}-h")
    settings = load_settings(
        db=PG_URL,
        bus="nats",
        nats_stream=signed_cfg.stream,
        nats_subject=signed_cfg.prefix,
        nats_durable=signed_cfg.durable,
        bus_signing_key_file=key_file,
    )
    events = [flow(i, "api") for i in range(30)]
    with TestClient(create_app(settings)) as client:
        r = client.post("/api/v1/events", json={"events": events}, headers=tenant.headers("sensor"))
        assert r.status_code == 202
    org_store = pg.for_org(tenant.org)
    worker = Worker(_detection(pg), signed_cfg)
    asyncio.run(_drain(worker, lambda: org_store.events.count() >= 30))
    assert org_store.events.count() == 30
    assert worker.refused_messages == 0


# ---- NATS authentication: a broker of our own with users, on a free loopback port ---------------------


@contextlib.contextmanager
def _nats_server(conf: Path, port: int) -> Iterator[None]:
    """Run ``nats-server -c conf`` (listening on ``port``) for the block."""
    proc = subprocess.Popen([NATS_SERVER, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, 10)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[tuple[str, str, Path, Path]]:
    """nats-server with JetStream that admits a user/password and an NKey user; nobody else."""
    assert Path(NATS_SERVER).exists(), "nats-server is installed by .ci/run (apt nats-server)"
    password = secrets.token_urlsafe(24)
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    port = _free_port()
    conf = tmp_path / "nats.conf"
    conf.write_text(
        f'listen: "127.0.0.1:{port}"\n'
        f'jetstream {{ store_dir: "{tmp_path / "js"}" }}\n'
        "authorization {\n  users = [\n"
        f'    {{ user: "healthsec", password: "{password}" }}\n'
        f'    {{ nkey: "{public}" }}\n'
        "  ]\n}\n"
    )
    password_file, seed_file = tmp_path / "nats.password", tmp_path / "nats.seed"
    password_file.write_text(password + "\n")
    seed_file.write_bytes(seed)
    with _nats_server(conf, port):
        yield f"nats://127.0.0.1:{port}", password, password_file, seed_file


def _connects(cfg: NatsConfig) -> bool:
    async def go() -> bool:
        try:
            nc, _ = await asyncio.wait_for(connect(cfg), 20)
        except BusUnavailable:
            return False
        await nc.close()
        return True

    return asyncio.run(go())


def test_nats_refuses_anonymous_and_admits_configured_credentials(
    auth_broker: tuple[str, str, Path, Path], tmp_path: Path
) -> None:
    url, _password, password_file, seed_file = auth_broker
    assert not _connects(NatsConfig(url=url))  # anonymous
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password")
    assert not _connects(
        nats_config(load_settings(nats_url=url, nats_user="healthsec", nats_password_file=wrong))
    )
    by_password = nats_config(
        load_settings(nats_url=url, nats_user="healthsec", nats_password_file=password_file)
    )
    assert by_password.password is not None and by_password.password not in repr(by_password)
    assert _connects(by_password)
    assert _connects(nats_config(load_settings(nats_url=url, nats_nkey_seed_file=seed_file)))


def _tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (PEM files)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test bus CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_file, cert_file, key_file


def test_tls_broker_needs_the_configured_ca(tmp_path: Path) -> None:
    assert Path(NATS_SERVER).exists()
    ca_file, cert_file, key_file = _tls_files(tmp_path)
    port = _free_port()
    conf = tmp_path / "tls.conf"
    conf.write_text(
        f'listen: "127.0.0.1:{port}"\n'
        f'jetstream {{ store_dir: "{tmp_path / "js"}" }}\n'
        f'tls {{ cert_file: "{cert_file}"\n key_file: "{key_file}" }}\n'
    )
    with _nats_server(conf, port):
        url = f"tls://127.0.0.1:{port}"
        assert not _connects(nats_config(load_settings(nats_url=url)))  # system CAs do not vouch for it
        assert _connects(nats_config(load_settings(nats_url=url, nats_tls_ca_file=ca_file)))
