"""Tenants and API tokens: create, verify, list and revoke; secrets are hashed at rest and shown once."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from healthsec.store import schema_auth
from healthsec.store.sql import AuditRepository

TOKEN_PREFIX = "hst"  # noqa: S105 - a public prefix, not a secret
_TOKEN_RE = re.compile(r"^hst_([0-9a-f]{16})\.([A-Za-z0-9_-]{20,128})$")
ORG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class Role(StrEnum):
    """What a token may do: admin everything in its org, analyst read+triage, auditor read-only,
    sensor ingest-only, partner sharing routes only."""

    ADMIN = "admin"
    ANALYST = "analyst"
    AUDITOR = "auditor"
    SENSOR = "sensor"
    PARTNER = "partner"


class AuthError(ValueError):
    """A token or organisation request is invalid; the message is meant for a person."""


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A stored token without its secret."""

    id: str
    org: str
    name: str
    role: Role
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    created_by: str

    def active(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "org": self.org,
            "name": self.name,
            "role": self.role.value,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "created_by": self.created_by,
            "active": self.active(),
        }


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _hash(secret: str) -> str:
    # The secret is 256 bits from `secrets`, so a fast hash is enough: there is nothing to brute-force,
    # and a slow KDF (bcrypt/argon2) would cost every API request tens of milliseconds for no gain.
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


_UNKNOWN_HASH = hashlib.sha256(secrets.token_bytes(32)).hexdigest()  # compared when a token id is unknown


def _row_to_info(row: Any) -> TokenInfo:
    m = row._mapping
    created = _utc(m["created_at"])
    assert created is not None
    return TokenInfo(
        id=m["id"],
        org=m["org"],
        name=m["name"],
        role=Role(m["role"]),
        created_at=created,
        expires_at=_utc(m["expires_at"]),
        revoked_at=_utc(m["revoked_at"]),
        created_by=m["created_by"],
    )


@dataclass
class AuthStore:
    """Organisations and tokens over the same database as the rest of the store."""

    engine: Engine

    # -- organisations -------------------------------------------------------------------------
    def create_org(self, org: str, name: str | None = None, actor: str = "cli") -> bool:
        """Create an organisation; return False if it already existed."""
        if not ORG_RE.match(org):
            raise AuthError(f"invalid organisation id {org!r}: use 1-64 of a-z 0-9 _ - (starting a-z0-9)")
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    schema_auth.orgs.insert().values(id=org, name=name or org, created_at=datetime.now(UTC))
                )
        except IntegrityError:
            return False
        AuditRepository(self.engine, org).record(actor, "org.create", org, name=name or org)
        return True

    def org_exists(self, org: str) -> bool:
        t = schema_auth.orgs
        with self.engine.connect() as conn:
            return conn.execute(select(t.c.id).where(t.c.id == org)).first() is not None

    def list_orgs(self) -> list[dict[str, Any]]:
        t = schema_auth.orgs
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).order_by(t.c.id))
            return [{"id": r.id, "name": r.name, "created_at": _utc(r.created_at)} for r in rows]

    # -- tokens --------------------------------------------------------------------------------
    def create_token(
        self,
        org: str,
        role: Role | str,
        name: str,
        *,
        ttl: timedelta | None = timedelta(days=90),
        actor: str = "cli",
        now: datetime | None = None,
    ) -> tuple[TokenInfo, str]:
        """Create a token; return its record and the full secret (the only time it is shown)."""
        try:
            role = Role(role)
        except ValueError:
            raise AuthError(
                f"unknown role {role!r}: choose one of {', '.join(r.value for r in Role)}"
            ) from None
        if not self.org_exists(org):
            raise AuthError(f"unknown organisation {org!r}: create it first (healthsec admin create-org)")
        if not name or len(name) > 128:
            raise AuthError("a token needs a name of 1-128 characters")
        now = now or datetime.now(UTC)
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        info = TokenInfo(
            id=token_id,
            org=org,
            name=name,
            role=role,
            created_at=now,
            expires_at=now + ttl if ttl is not None else None,
            revoked_at=None,
            created_by=actor,
        )
        with self.engine.begin() as conn:
            conn.execute(
                schema_auth.api_tokens.insert().values(
                    id=info.id,
                    org=org,
                    name=name,
                    role=role.value,
                    secret_hash=_hash(secret),
                    created_at=info.created_at,
                    expires_at=info.expires_at,
                    revoked_at=None,
                    created_by=actor,
                )
            )
        AuditRepository(self.engine, org).record(
            actor,
            "token.create",
            token_id,
            role=role.value,
            name=name,
            expires_at=info.expires_at.isoformat() if info.expires_at else None,
        )
        return info, f"{TOKEN_PREFIX}_{token_id}.{secret}"

    def verify(self, token: str, now: datetime | None = None) -> TokenInfo | None:
        """The active token this bearer string names, or None (unknown, wrong secret, expired, revoked)."""
        match = _TOKEN_RE.match(token.strip())
        if match is None:
            return None
        token_id, secret = match.groups()
        t = schema_auth.api_tokens
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.id == token_id)).first()
        # equal work for unknown ids: the secret is hashed and compared either way
        stored = row._mapping["secret_hash"] if row is not None else _UNKNOWN_HASH
        if not hmac.compare_digest(stored, _hash(secret)) or row is None:
            return None
        info = _row_to_info(row)
        return info if info.active(now) else None

    def get(self, token_id: str) -> TokenInfo | None:
        t = schema_auth.api_tokens
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.id == token_id)).first()
        return None if row is None else _row_to_info(row)

    def list_tokens(self, org: str | None = None) -> list[TokenInfo]:
        t = schema_auth.api_tokens
        stmt = select(t).order_by(t.c.created_at, t.c.id)
        if org is not None:
            stmt = stmt.where(t.c.org == org)
        with self.engine.connect() as conn:
            return [_row_to_info(r) for r in conn.execute(stmt)]

    def revoke(self, token_id: str, *, org: str | None = None, actor: str = "cli") -> bool:
        """Revoke a token (restricted to ``org`` when given); False if there is no such active token."""
        t = schema_auth.api_tokens
        stmt = update(t).where(t.c.id == token_id, t.c.revoked_at.is_(None))
        if org is not None:
            stmt = stmt.where(t.c.org == org)
        info = self.get(token_id)
        with self.engine.begin() as conn:
            changed = conn.execute(stmt.values(revoked_at=datetime.now(UTC))).rowcount or 0
        if changed and info is not None:
            AuditRepository(self.engine, info.org).record(actor, "token.revoke", token_id)
        return bool(changed)
