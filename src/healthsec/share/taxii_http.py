"""TAXII 2.1 HTTP details: media types, error envelopes, Basic credentials, filters and paging tokens."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from healthsec.model.common import TIMESTAMP_RE, parse_timestamp
from healthsec.share.stix_ids import normalise_id
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
    if not sep or not user or _CONTROL.search(user) or len(user) > 200:
        raise TaxiiError(401, "Unauthorized", "malformed Basic credentials", **{"WWW-Authenticate": "Basic"})
    return user, secret


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_SEQ = 2**63 - 1  # the largest paging token a database integer holds


def check_text(name: str, value: str, limit: int = 1000) -> None:
    """400 naming the parameter when a value carries control characters (NUL...) or is too long."""
    if _CONTROL.search(value):
        raise TaxiiError(400, "Bad Request", f"parameter {name[:60]!r} holds a control character")
    if len(value) > limit:
        raise TaxiiError(400, "Bad Request", f"parameter {name[:60]!r} is longer than {limit} characters")


def check_params(request: Request) -> None:
    """Every query and path parameter of a TAXII request checked with :func:`check_text`."""
    for name, value in request.query_params.multi_items():
        check_text(_CONTROL.sub("?", name), name)
        check_text(name, value, 10_000)
    for name, value in request.path_params.items():
        check_text(name, str(value))


def _timestamp(name: str, raw: str) -> datetime:
    try:
        return parse_timestamp(raw)
    except ValueError as exc:
        raise TaxiiError(400, "Bad Request", f"{name}: {exc}") from None


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
    check_params(request)
    if "added_after" in q:
        added_after = _timestamp("added_after", q["added_after"])
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
        raw = q["next"]
        if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) > _MAX_SEQ:
            raise TaxiiError(400, "Bad Request", "next is not a token this server issued")
        after_seq = int(raw)
    version_args = _csv(request, "match[version]")
    versions: Versions = "last"
    if "all" in version_args:
        versions = "all"
    elif version_args == ("first",):
        versions = "first"
    elif version_args and version_args != ("last",):
        if any(v not in ("first", "last") and not TIMESTAMP_RE.match(v) for v in version_args):
            raise TaxiiError(400, "Bad Request", "match[version] takes first, last, all or timestamps")
        for v in version_args:
            if v not in ("first", "last"):
                _timestamp("match[version]", v)
        if any(v in ("first", "last") for v in version_args):
            raise TaxiiError(
                400, "Bad Request", "match[version] cannot mix first/last with other values here"
            )
        versions = tuple(version_args)
    return Filters(
        added_after=added_after,
        ids=tuple(normalise_id(i) for i in _csv(request, "match[id]")),
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
