"""TAXII 2.1 HTTP details: media types, error envelopes, Basic credentials, filters and paging tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from healthsec.model import parse_utc
from healthsec.share.stix_ids import TIMESTAMP_RE
from healthsec.store.sharing import Versions, taxii_timestamp

TAXII_MEDIA = "application/taxii+json;version=2.1"
STIX_MEDIA = "application/stix+json;version=2.1"


class TaxiiError(Exception):
    """An HTTP error answered with a TAXII error message and never any data."""

    def __init__(self, status: int, title: str, description: str | None = None, **headers: str) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.description = description
        self.headers = headers

    def response(self) -> Response:
        body: dict[str, Any] = {"title": self.title, "http_status": str(self.status)}
        if self.description:
            body["description"] = self.description
        return Response(
            orjson.dumps(body), status_code=self.status, media_type=TAXII_MEDIA, headers=self.headers
        )


def taxii_response(
    body: dict[str, Any] | bytes, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(content, status_code=status, media_type=TAXII_MEDIA, headers=headers)


def _media_ok(value: str, main: str) -> bool:
    """``main`` with no version or version 2.1 (parameters in any order, spaces ignored)."""
    tokens = [t.strip().lower() for t in value.split(";")]
    if tokens[0] != main:
        return False
    versions = [t.split("=", 1)[1] for t in tokens[1:] if t.startswith("version=")]
    return not versions or versions == ["2.1"]


def check_accept(request: Request) -> None:
    """406 unless the client accepts TAXII 2.1 JSON (``*/*`` and a missing header are accepted)."""
    accept = request.headers.get("accept")
    if accept is None:
        return
    for part in accept.split(","):
        media = part.split(";q=")[0].strip()
        if media in ("*/*", "application/*") or _media_ok(media, "application/taxii+json"):
            return
    raise TaxiiError(406, "Not Acceptable", f"this server answers only {TAXII_MEDIA}")


def check_content_type(request: Request) -> None:
    """415 unless the request body is TAXII 2.1 JSON."""
    ctype = request.headers.get("content-type", "")
    if not _media_ok(ctype, "application/taxii+json"):
        raise TaxiiError(415, "Unsupported Media Type", f"send {TAXII_MEDIA}")


def basic_credentials(request: Request) -> tuple[str, str]:
    """The (user, secret) of HTTP Basic auth, or 401."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise TaxiiError(
            401, "Unauthorized", "HTTP Basic credentials required", **{"WWW-Authenticate": "Basic"}
        )
    try:
        user, sep, secret = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user, sep, secret = "", "", ""
    if not sep or not user:
        raise TaxiiError(401, "Unauthorized", "malformed Basic credentials", **{"WWW-Authenticate": "Basic"})
    return user, secret


class CredentialCache:
    """Remembers successful secret checks for ``ttl`` seconds (scrypt costs ~50 ms per check by design).

    Keys are SHA-256 digests of user and secret, so no secret is held in memory in clear.
    """

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._ok: dict[bytes, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(user: str, secret: str) -> bytes:
        return hashlib.sha256(user.encode() + b"\x00" + secret.encode()).digest()

    def hit(self, user: str, secret: str) -> bool:
        key = self._key(user, secret)
        with self._lock:
            until = self._ok.get(key)
            if until is None or until < time.monotonic():
                self._ok.pop(key, None)
                return False
            return True

    def remember(self, user: str, secret: str) -> None:
        with self._lock:
            if len(self._ok) > 10_000:
                self._ok.clear()
            self._ok[self._key(user, secret)] = time.monotonic() + self.ttl


@dataclass(frozen=True)
class Filters:
    """The TAXII ``match[...]``, ``added_after``, ``limit`` and ``next`` parameters of one request."""

    added_after: datetime | None
    ids: tuple[str, ...]
    types: tuple[str, ...]
    versions: Versions
    spec_versions: tuple[str, ...]
    limit: int
    after_seq: int | None


def _csv(request: Request, name: str) -> tuple[str, ...]:
    return tuple(v.strip() for raw in request.query_params.getlist(name) for v in raw.split(",") if v.strip())


def parse_filters(request: Request, *, default_limit: int, max_limit: int) -> Filters:
    """Read and check the query parameters; a bad value is a 400 naming the parameter."""
    q = request.query_params
    added_after = None
    if "added_after" in q:
        raw = q["added_after"]
        if not TIMESTAMP_RE.match(raw):
            raise TaxiiError(400, "Bad Request", f"added_after {raw[:40]!r} is not a TAXII timestamp")
        added_after = parse_utc(raw)
    limit = default_limit
    if "limit" in q:
        try:
            limit = int(q["limit"])
        except ValueError:
            raise TaxiiError(400, "Bad Request", "limit must be a positive integer") from None
        if limit < 1:
            raise TaxiiError(400, "Bad Request", "limit must be a positive integer")
        limit = min(limit, max_limit)
    after_seq = None
    if q.get("next"):
        try:
            after_seq = int(q["next"])
        except ValueError:
            raise TaxiiError(400, "Bad Request", "next is not a token this server issued") from None
    version_args = _csv(request, "match[version]")
    versions: Versions = "last"
    if "all" in version_args:
        versions = "all"
    elif version_args == ("first",):
        versions = "first"
    elif version_args and version_args != ("last",):
        if any(v not in ("first", "last") and not TIMESTAMP_RE.match(v) for v in version_args):
            raise TaxiiError(400, "Bad Request", "match[version] takes first, last, all or timestamps")
        if any(v in ("first", "last") for v in version_args):
            raise TaxiiError(
                400, "Bad Request", "match[version] cannot mix first/last with other values here"
            )
        versions = tuple(version_args)
    return Filters(
        added_after=added_after,
        ids=_csv(request, "match[id]"),
        types=_csv(request, "match[type]"),
        versions=versions,
        spec_versions=_csv(request, "match[spec_version]"),
        limit=limit,
        after_seq=after_seq,
    )


def added_headers(dates: Sequence[datetime]) -> dict[str, str]:
    """The X-TAXII-Date-Added-First/Last headers for a page (none for an empty page)."""
    if not dates:
        return {}
    return {
        "X-TAXII-Date-Added-First": taxii_timestamp(dates[0]),
        "X-TAXII-Date-Added-Last": taxii_timestamp(dates[-1]),
    }
