"""Repository of the console's server-side sessions, read together with the token that signed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, select, update

from healthsec.store import schema_auth
from healthsec.store.schema_sessions import console_sessions


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A stored session and its token's current state (role, name, expiry, revocation)."""

    org: str
    token_id: str
    csrf: str
    created_at: datetime
    last_seen: datetime
    expires_at: datetime
    role: str
    name: str
    token_expires_at: datetime | None
    token_revoked_at: datetime | None


@dataclass
class SessionRepository:
    """Sessions over the same database as the tokens; keys are hashes of the cookie's secret."""

    engine: Engine

    def create(
        self, id_hash: str, *, org: str, token_id: str, csrf: str, now: datetime, expires_at: datetime
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                console_sessions.insert().values(
                    id_hash=id_hash,
                    org=org,
                    token_id=token_id,
                    csrf=csrf,
                    created_at=now,
                    last_seen=now,
                    expires_at=expires_at,
                )
            )

    def get(self, id_hash: str) -> SessionRow | None:
        s, t = console_sessions, schema_auth.api_tokens
        stmt = (
            select(
                s.c.org,
                s.c.token_id,
                s.c.csrf,
                s.c.created_at,
                s.c.last_seen,
                s.c.expires_at,
                t.c.role,
                t.c.name,
                t.c.expires_at.label("token_expires_at"),
                t.c.revoked_at,
            )
            .join(t, t.c.id == s.c.token_id)
            .where(s.c.id_hash == id_hash, t.c.org == s.c.org)
        )
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        m = row._mapping
        return SessionRow(
            org=m["org"],
            token_id=m["token_id"],
            csrf=m["csrf"],
            created_at=_utc(m["created_at"]),
            last_seen=_utc(m["last_seen"]),
            expires_at=_utc(m["expires_at"]),
            role=m["role"],
            name=m["name"],
            token_expires_at=None if m["token_expires_at"] is None else _utc(m["token_expires_at"]),
            token_revoked_at=None if m["revoked_at"] is None else _utc(m["revoked_at"]),
        )

    def touch(self, id_hash: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(console_sessions).where(console_sessions.c.id_hash == id_hash).values(last_seen=now)
            )

    def delete(self, id_hash: str) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(delete(console_sessions).where(console_sessions.c.id_hash == id_hash))
        return bool(done.rowcount)

    def purge(self, now: datetime) -> int:
        """Remove sessions past their absolute expiry; return how many."""
        with self.engine.begin() as conn:
            done = conn.execute(delete(console_sessions).where(console_sessions.c.expires_at <= now))
        return int(done.rowcount or 0)
