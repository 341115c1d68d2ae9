"""Tokens: hashed at rest, shown once, expiring, revocable; organisations validated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from healthsec.store import Store
from healthsec.store.auth import AuthError, AuthStore, Role
from healthsec.store.schema_auth import api_tokens


@pytest.fixture
def auth(tmp_path: Path) -> AuthStore:
    store = Store.open(str(tmp_path / "auth.db"))
    a = AuthStore(store.engine)
    a.create_org("north")
    return a


def test_token_roundtrip_and_hash_at_rest(auth: AuthStore) -> None:
    info, secret = auth.create_token("north", "analyst", "alice")
    assert secret.startswith(f"hst_{info.id}.")
    verified = auth.verify(secret)
    assert verified is not None
    assert (verified.org, verified.role, verified.name) == ("north", Role.ANALYST, "alice")
    with auth.engine.connect() as conn:
        stored = conn.execute(select(api_tokens.c.secret_hash).where(api_tokens.c.id == info.id)).scalar_one()
    assert secret.split(".", 1)[1] not in stored
    assert len(stored) == 64


def test_wrong_secret_and_garbage_are_refused(auth: AuthStore) -> None:
    info, secret = auth.create_token("north", "admin", "root")
    assert auth.verify(secret[:-2] + ("AA" if not secret.endswith("AA") else "BB")) is None
    assert auth.verify(f"hst_{info.id}.") is None
    assert auth.verify("not a token") is None
    assert auth.verify("") is None


def test_expiry(auth: AuthStore) -> None:
    past = datetime.now(UTC) - timedelta(days=2)
    _, secret = auth.create_token("north", "sensor", "old", ttl=timedelta(days=1), now=past)
    assert auth.verify(secret) is None
    _, fresh = auth.create_token("north", "sensor", "new", ttl=timedelta(days=1))
    assert auth.verify(fresh) is not None
    assert auth.verify(fresh, now=datetime.now(UTC) + timedelta(days=2)) is None


def test_revocation_is_immediate_and_scoped(auth: AuthStore) -> None:
    auth.create_org("south")
    info, secret = auth.create_token("north", "auditor", "carol")
    assert auth.revoke(info.id, org="south") is False  # another org cannot revoke it
    assert auth.verify(secret) is not None
    assert auth.revoke(info.id, org="north") is True
    assert auth.verify(secret) is None
    assert auth.revoke(info.id) is False  # already revoked
    listed = {t.id: t for t in auth.list_tokens("north")}
    assert listed[info.id].revoked_at is not None
    assert not listed[info.id].active()


def test_bad_org_role_name(auth: AuthStore) -> None:
    with pytest.raises(AuthError, match="unknown role"):
        auth.create_token("north", "root", "x")
    with pytest.raises(AuthError, match="unknown organisation"):
        auth.create_token("nowhere", "admin", "x")
    with pytest.raises(AuthError, match="invalid organisation id"):
        auth.create_org("Bad Org!")
    assert auth.create_org("north") is False


def test_changes_are_audited(auth: AuthStore) -> None:
    info, _ = auth.create_token("north", "admin", "root", actor="cli")
    auth.revoke(info.id, actor="cli")
    actions = [r["action"] for r in Store(auth.engine, "north").audit.list()]
    assert actions[:3] == ["token.revoke", "token.create", "org.create"]
