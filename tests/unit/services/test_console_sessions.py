"""Console sessions: bad tokens and roles refused, idle and absolute expiry, revocation, sign-out, CSRF."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from healthsec.services import console_sessions as cs
from healthsec.services.common import Refused
from healthsec.store import Store
from healthsec.store.auth import AuthStore

POLICY = cs.SessionPolicy(idle=timedelta(minutes=30), max_age=timedelta(hours=12))
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(str(tmp_path / "s.db"), "h1")
    AuthStore(s.engine).create_org("h1")
    return s


def _token(store: Store, role: str) -> tuple[str, str]:
    info, secret = AuthStore(store.engine).create_token("h1", role, role, ttl=None)
    return info.id, secret


@pytest.mark.parametrize("bad", ["", "   ", "hst_0123456789abcdef.wrongwrongwrongwrongwrong", "x" * 5000])
def test_bad_tokens_are_refused_without_echo(store: Store, bad: str) -> None:
    with pytest.raises(Refused) as err:
        cs.sign_in(store, bad, POLICY, now=T0)
    assert bad.strip() == "" or bad not in str(err.value)


@pytest.mark.parametrize("role", ["sensor", "partner"])
def test_sensor_and_partner_cannot_sign_in(store: Store, role: str) -> None:
    with pytest.raises(Refused, match=f"a {role} token cannot sign in"):
        cs.sign_in(store, _token(store, role)[1], POLICY, now=T0)


def test_session_lives_until_idle_or_max_age(store: Store) -> None:
    sid, viewer = cs.sign_in(store, _token(store, "auditor")[1], POLICY, now=T0)
    assert not viewer.can_change and viewer.org == "h1"
    assert cs.resume(store, sid, POLICY, now=T0 + timedelta(minutes=29)) == viewer
    # each request moves the idle clock on; the absolute end stays
    assert cs.resume(store, sid, POLICY, now=T0 + timedelta(minutes=58)) is not None
    assert cs.resume(store, sid + "x", POLICY, now=T0 + timedelta(minutes=59)) is None
    assert cs.resume(store, sid, POLICY, now=T0 + timedelta(hours=12)) is None
    # a dead session is deleted, not revived
    assert cs.resume(store, sid, POLICY, now=T0 + timedelta(minutes=60)) is None


def test_idle_session_ends(store: Store) -> None:
    sid, _ = cs.sign_in(store, _token(store, "analyst")[1], POLICY, now=T0)
    assert cs.resume(store, sid, POLICY, now=T0 + timedelta(minutes=31)) is None


def test_revoked_token_ends_its_sessions_and_sign_out_is_final(store: Store) -> None:
    token_id, secret = _token(store, "admin")
    sid, viewer = cs.sign_in(store, secret, POLICY, now=T0)
    assert viewer.can_change
    assert AuthStore(store.engine).revoke(token_id)
    assert cs.resume(store, sid, POLICY) is None
    sid2, viewer2 = cs.sign_in(store, _token(store, "analyst")[1], POLICY)
    cs.sign_out(store, sid2, viewer2)
    assert cs.resume(store, sid2, POLICY) is None
    actions = [r["action"] for r in store.for_org("h1").audit.list()]
    assert "console.sign_in" in actions and "console.sign_out" in actions


def test_csrf_must_match(store: Store) -> None:
    _, viewer = cs.sign_in(store, _token(store, "analyst")[1], POLICY, now=T0)
    assert cs.csrf_matches(viewer, viewer.csrf)
    assert not cs.csrf_matches(viewer, None)
    assert not cs.csrf_matches(viewer, "")
    assert not cs.csrf_matches(viewer, viewer.csrf[:-1])
