"""Console sign-in use cases: a token of the organisation opens a server-side session; sign-out; expiry."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from healthsec.services.common import Refused
from healthsec.store.auth import AuthStore, Role
from healthsec.store.sessions import SessionRepository

if TYPE_CHECKING:
    from healthsec.store import Store

SIGN_IN_ROLES = frozenset({Role.ADMIN, Role.ANALYST, Role.AUDITOR})
CHANGE_ROLES = frozenset({Role.ADMIN, Role.ANALYST})
_TOUCH_EVERY = timedelta(seconds=30)  # last_seen is written at most this often (one write per page load)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is signed in: the token (audit actor), its organisation and role, and the session's CSRF token."""

    org: str
    token_id: str
    role: Role
    name: str
    csrf: str

    @property
    def actor(self) -> str:
        return f"token:{self.token_id}"

    @property
    def can_change(self) -> bool:
        """Admins and analysts act; auditors only read."""
        return self.role in CHANGE_ROLES


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: timedelta
    max_age: timedelta


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii", "replace")).hexdigest()


def sign_in(
    store: Store, token: str, policy: SessionPolicy, *, now: datetime | None = None
) -> tuple[str, Viewer]:
    """Verify an API token and open a session; return (the cookie's secret, the viewer).

    Refused (without saying which part was wrong) for an unknown, expired or revoked token, and for a role
    that may not use the console (sensor, partner). The token is never stored or logged.
    """
    now = now or datetime.now(UTC)
    info = AuthStore(store.engine).verify(token.strip(), now) if token.strip() else None
    if info is None:
        raise Refused("this token is unknown, expired or revoked")
    if info.role not in SIGN_IN_ROLES:
        raise Refused(f"a {info.role.value} token cannot sign in to the console")
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    SessionRepository(store.engine).create(
        _key(session_id), org=info.org, token_id=info.id, csrf=csrf, now=now, expires_at=now + policy.max_age
    )
    viewer = Viewer(info.org, info.id, info.role, info.name, csrf)
    store.for_org(info.org).audit.record(viewer.actor, "console.sign_in", None)
    return session_id, viewer


def resume(
    store: Store, session_id: str | None, policy: SessionPolicy, *, now: datetime | None = None
) -> Viewer | None:
    """The viewer of a live session, or None (no such session, idle too long, past its end, token gone).

    A session found dead is deleted.
    """
    if not session_id or len(session_id) > 128:
        return None
    now = now or datetime.now(UTC)
    repo = SessionRepository(store.engine)
    key = _key(session_id)
    row = repo.get(key)
    if row is None:
        return None
    token_dead = row.token_revoked_at is not None or (
        row.token_expires_at is not None and row.token_expires_at <= now
    )
    if token_dead or row.expires_at <= now or row.last_seen + policy.idle <= now:
        repo.delete(key)
        return None
    try:
        role = Role(row.role)
    except ValueError:
        return None
    if role not in SIGN_IN_ROLES:
        return None
    if now - row.last_seen >= _TOUCH_EVERY:
        repo.touch(key, now)
    return Viewer(row.org, row.token_id, role, row.name, row.csrf)


def sign_out(store: Store, session_id: str | None, viewer: Viewer | None = None) -> None:
    """End a session (nothing happens for an unknown one)."""
    if not session_id:
        return
    if SessionRepository(store.engine).delete(_key(session_id)) and viewer is not None:
        store.for_org(viewer.org).audit.record(viewer.actor, "console.sign_out", None)


def csrf_matches(viewer: Viewer, presented: str | None) -> bool:
    """True when a form carries this session's CSRF token (constant-time comparison)."""
    return bool(presented) and hmac.compare_digest(viewer.csrf.encode(), str(presented).encode())
