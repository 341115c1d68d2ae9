"""Sharing repositories for partners: hashed secrets, per-collection rights, pull/push cursors, quarantine."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from healthsec.store import schema_sharing as s

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def _utc(ts: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _ins(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def hash_secret(secret: str) -> str:
    """Hash a partner secret with scrypt (standard library) and a random salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_secret(secret: str, stored: str | None) -> bool:
    """Constant-time check of ``secret`` against a ``hash_secret`` value; a missing hash never matches."""
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt_b64, digest_b64 = stored.split("$", 2)
    digest = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt_b64), dklen=32, **_SCRYPT)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


@dataclass
class PartnerRepository:
    engine: Engine
    org: str

    def add(
        self,
        name: str,
        organisation: str,
        *,
        secret: str | None = None,
        url: str | None = None,
        remote_collection: str | None = None,
        remote_user: str | None = None,
        policy: Mapping[str, Any] | None = None,
        push_collection: str | None = None,
    ) -> None:
        """Add or update a partner; ``secret`` (their credential for our server) is stored hashed only."""
        row = {
            "org": self.org,
            "name": name,
            "organisation": organisation,
            "password_hash": hash_secret(secret) if secret else None,
            "url": url,
            "remote_collection": remote_collection,
            "remote_user": remote_user,
            "policy": dict(policy) if policy is not None else None,
            "push_collection": push_collection,
            "created": datetime.now(UTC),
        }
        t = s.share_partners
        with self.engine.begin() as conn:
            ins = _ins(conn)(t).values(row)
            keep = {c: ins.excluded[c] for c in row if c not in ("org", "name", "created")}
            if secret is None:
                keep.pop("password_hash")
            conn.execute(ins.on_conflict_do_update(index_elements=["org", "name"], set_=keep))

    def get(self, name: str) -> dict[str, Any] | None:
        t = s.share_partners
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.org == self.org, t.c.name == name)).first()
        return None if row is None else self._public(row._mapping)

    def list(self) -> list[dict[str, Any]]:
        t = s.share_partners
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.org == self.org).order_by(t.c.name))
            return [self._public(r._mapping) for r in rows]

    def secret_hash(self, name: str) -> str | None:
        """The stored scrypt hash of a partner's secret (None: no such partner or no secret)."""
        t = s.share_partners
        with self.engine.connect() as conn:
            return conn.execute(
                select(t.c.password_hash).where(t.c.org == self.org, t.c.name == name)
            ).scalar()

    def verify(self, name: str, secret: str) -> bool:
        t = s.share_partners
        with self.engine.connect() as conn:
            stored = conn.execute(
                select(t.c.password_hash).where(t.c.org == self.org, t.c.name == name)
            ).scalar()
        return verify_secret(secret, stored)

    def grant(self, partner: str, collection_id: str, *, read: bool, write: bool) -> None:
        t = s.share_rights
        row = {
            "org": self.org,
            "partner": partner,
            "collection_id": collection_id,
            "can_read": read,
            "can_write": write,
        }
        with self.engine.begin() as conn:
            ins = _ins(conn)(t).values(row)
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=["org", "partner", "collection_id"],
                    set_={"can_read": ins.excluded.can_read, "can_write": ins.excluded.can_write},
                )
            )

    def rights(self, partner: str) -> dict[str, tuple[bool, bool]]:
        """Collection id → (can_read, can_write) for this partner."""
        t = s.share_rights
        stmt = select(t.c.collection_id, t.c.can_read, t.c.can_write).where(
            t.c.org == self.org, t.c.partner == partner
        )
        with self.engine.connect() as conn:
            return {r[0]: (bool(r[1]), bool(r[2])) for r in conn.execute(stmt)}

    @staticmethod
    def _public(row: Any) -> dict[str, Any]:
        keys = (
            "name",
            "organisation",
            "url",
            "remote_collection",
            "remote_user",
            "policy",
            "push_collection",
        )
        out = {k: row[k] for k in keys}
        out["has_secret"] = row["password_hash"] is not None
        out["created"] = _utc(row["created"])
        return out


@dataclass
class CursorRepository:
    engine: Engine
    org: str

    def get(self, partner: str, collection: str) -> dict[str, Any] | None:
        t = s.share_cursors
        stmt = select(t).where(t.c.org == self.org, t.c.partner == partner, t.c.collection == collection)
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        out = dict(row._mapping)
        for k in ("last_attempt", "last_success"):
            out[k] = _utc(out[k])
        return out

    def record(
        self, partner: str, collection: str, *, added_after: str | None, pulled: int, error: str | None
    ) -> None:
        """Remember a pull attempt; the cursor only moves forward on success."""
        t = s.share_cursors
        now = datetime.now(UTC)
        old = self.get(partner, collection)
        row = {
            "org": self.org,
            "partner": partner,
            "collection": collection,
            "added_after": added_after if error is None else (old or {}).get("added_after"),
            "last_attempt": now,
            "last_success": now if error is None else (old or {}).get("last_success"),
            "last_error": error,
            "pulled": (old or {}).get("pulled", 0) + (pulled if error is None else 0),
        }
        with self.engine.begin() as conn:
            ins = _ins(conn)(t).values(row)
            cols = {c: ins.excluded[c] for c in row if c not in ("org", "partner", "collection")}
            keys = ["org", "partner", "collection"]
            conn.execute(ins.on_conflict_do_update(index_elements=keys, set_=cols))


@dataclass
class QuarantineRepository:
    engine: Engine
    org: str
    keep_raw_bytes: int = 1_000_000

    def add(self, raw: bytes, reason: str, *, source: str | None = None) -> str:
        """Keep a rejected bundle (raw kept only up to ``keep_raw_bytes``) with the reason; return its id."""
        digest = hashlib.sha256(raw).hexdigest()
        qid = f"quarantine-{uuid.uuid4().hex[:24]}"
        text = raw.decode("utf-8", errors="replace") if len(raw) <= self.keep_raw_bytes else None
        with self.engine.begin() as conn:
            conn.execute(
                s.share_quarantine.insert().values(
                    org=self.org,
                    id=qid,
                    received=datetime.now(UTC),
                    source=source,
                    reason=reason,
                    size=len(raw),
                    sha256=digest,
                    raw=text,
                )
            )
        return qid

    def list(self, limit: int = 100) -> list[dict[str, Any]]:
        t = s.share_quarantine
        stmt = (
            select(t.c.id, t.c.received, t.c.source, t.c.reason, t.c.size, t.c.sha256)
            .where(t.c.org == self.org)
            .order_by(t.c.received.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) | {"received": _utc(r[1])} for r in conn.execute(stmt)]
