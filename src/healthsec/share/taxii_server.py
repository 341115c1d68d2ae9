"""TAXII 2.1 server as a FastAPI router: discovery, API root, collections, objects, manifests, status.

Partners authenticate with HTTP Basic against hashed secrets and get per-collection read/write rights.
Every object served to a partner leaves through ``healthsec.share.outbound.outbound`` (privacy then
policy) at one call site, :func:`release_page` (also used by push); without sharing keys nothing is served.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from healthsec.privacy.pseudonymise import SharingKeys
from healthsec.share.known import known_from_store
from healthsec.share.outbound import known_identifiers, outbound
from healthsec.share.policy import PartnerPolicy, policy_from_dict
from healthsec.share.stix_ids import normalise_id, sdo_id
from healthsec.share.taxii_add import add_envelope
from healthsec.share.taxii_auth import PartnerAuth, SignInRefused
from healthsec.share.taxii_cache import TtlLru, TtlValue
from healthsec.share.taxii_http import (
    STIX_MEDIA,
    TAXII_MEDIA,
    Filters,
    TaxiiError,
    added_headers,
    basic_credentials,
    check_accept,
    check_content_type,
    check_params,
    parse_filters,
    taxii_response,
)
from healthsec.share.taxii_ids import ReaderIds, reader_scope
from healthsec.store import Store
from healthsec.store.sharing import Sharing, StoredObject, taxii_timestamp

_RECENT_ALERTS = 50_000
_SEQ_MARK = "x_healthsec_seq"  # carried through the exit door to join released objects to stored rows


@dataclass(frozen=True)
class TaxiiConfig:
    """What the server announces and its limits."""

    title: str = "healthsec TAXII 2.1"
    description: str = "Security knowledge shared between health organisations"
    contact: str | None = None
    api_root: str = "api"
    default_limit: int = 100
    max_limit: int = 1000
    max_content_length: int = 10 * 1024 * 1024
    allow_custom: tuple[str, ...] = ()
    release_cache_seconds: float = 300.0
    release_cache_items: int = 200_000
    known_refresh_seconds: float = 60.0
    #: the public base URL partners reach this server at (e.g. https://cti.hospital.example); discovery
    #: announces API roots under it, or as relative URLs when unset, and never from the Host header
    public_url: str | None = None


@dataclass(frozen=True)
class Principal:
    """An authenticated partner and its rights: collection id → (can_read, can_write)."""

    partner: dict[str, Any]
    rights: Mapping[str, tuple[bool, bool]]

    @property
    def name(self) -> str:
        return str(self.partner["name"])


def partner_policy(partner: Mapping[str, Any]) -> PartnerPolicy:
    """The sharing policy stored with a partner (``policy_from_dict``: TLP GREEN ceiling by default)."""
    org = str(partner["organisation"])
    if not org.startswith("identity--"):
        org = sdo_id("identity", "organisation", org)
    return policy_from_dict(str(partner["name"]), org, partner.get("policy"))


def _refs(obj: Mapping[str, Any]) -> set[str]:
    out: set[str] = set()
    for key, value in obj.items():
        if key == "object_marking_refs":
            continue
        if key.endswith("_ref") and isinstance(value, str):
            out.add(value)
        elif key.endswith("_refs") and isinstance(value, list):
            out.update(v for v in value if isinstance(v, str))
    return out


def object_version(row: StoredObject, obj: Mapping[str, Any]) -> str:
    """An object's TAXII version: ``modified``, else ``created``, else its date added (SCOs)."""
    value = obj.get("modified") or obj.get("created")
    return str(value) if value else taxii_timestamp(row.date_added)


def partner_fingerprint(partner: Mapping[str, Any]) -> bytes:
    """What a partner's released objects depend on: name, organisation and sharing rules."""
    rules = {
        "name": partner["name"],
        "organisation": partner["organisation"],
        "policy": partner.get("policy"),
    }
    return orjson.dumps(rules, option=orjson.OPT_SORT_KEYS)


def release_page(
    items: Sequence[StoredObject],
    partner: Mapping[str, Any],
    keys: SharingKeys | None,
    context: Callable[[set[str]], list[dict[str, Any]]],
    *,
    known: Mapping[str, Iterable[str]] | None = None,
    cache: TtlLru[dict[str, Any]] | None = None,
    id_scope: str | None = None,
    keep_ids: Iterable[str] = (),
) -> list[tuple[StoredObject, dict[str, Any]]]:
    """THE exit door for TAXII: every object a partner receives passes ``outbound`` here, and only here.

    A page is cut out of a larger collection, so the objects a page refers to (a sighting's indicator
    on an earlier page) are fetched by ``context`` and passed through the door with it: the policy then
    judges references as it would for the whole bundle, and only the page's own objects are returned.
    Several versions of one object are released in separate passes (the policy keys objects by id).
    Objects released before to the same partner under the same rules come from ``cache`` (entries
    expire, so identifiers that became known since are applied within the cache lifetime); objects
    the door withheld are never cached and are judged again on every request. ``id_scope`` and
    ``keep_ids`` go to ``outbound`` (one reader's view of one collection; ids the reader gave us),
    the latter read after ``context`` ran (it may add the ids of referenced objects).
    """
    if keys is None:
        raise TaxiiError(503, "Service Unavailable", "sharing keys are not configured; nothing is served")
    fingerprint = partner_fingerprint(partner) + (id_scope or "").encode()
    out: list[tuple[StoredObject, dict[str, Any]]] = []
    pending: list[StoredObject] = []
    hits = (
        cache.get_many([(fingerprint, it.seq) for it in items]) if cache is not None else [None] * len(items)
    )
    for item, hit in zip(items, hits, strict=True):
        if hit is not None:
            out.append((item, hit))
        else:
            pending.append(item)
    if pending:
        policy = partner_policy(partner)
        layers: list[list[StoredObject]] = []
        for item in pending:
            for layer in layers:
                if all(other.id != item.id for other in layer):
                    layer.append(item)
                    break
            else:
                layers.append([item])
        for layer in layers:
            by_seq = {it.seq: it for it in layer}
            objects = [orjson.loads(it.body) | {_SEQ_MARK: it.seq} for it in layer]
            present = {str(o["id"]) for o in objects}
            wanted = set().union(*(_refs(o) for o in objects)) - present
            extra = [o for o in context(wanted) if o.get("id") not in present] if wanted else []
            cleared = outbound(
                objects + extra, policy, keys, known=known, id_scope=id_scope, keep_ids=list(keep_ids)
            )
            for obj in cleared.objects:
                seq = obj.get(_SEQ_MARK)
                if isinstance(seq, int) and seq in by_seq:
                    released = {k: v for k, v in obj.items() if k != _SEQ_MARK}
                    out.append((by_seq[seq], released))
                    if cache is not None:
                        cache.put((fingerprint, seq), released)
    out.sort(key=lambda pair: pair[0].seq)
    return out


def known_for_sharing(store: Store) -> dict[str, set[str]]:
    """Internal identifiers to tokenise: those of incidents and inventory (``known_from_store``, as the
    file export uses) plus those of the newest alerts, which may be in no incident yet (bounded)."""
    known = known_from_store(store)
    recent = store.alerts.list(limit=_RECENT_ALERTS, offset=max(0, store.alerts.count() - _RECENT_ALERTS))
    for kind, values in known_identifiers((), recent).items():
        known.setdefault(kind, set()).update(values)
    return known


class _Service:
    """Request handling shared by the routes (kept apart from FastAPI so the routes stay thin)."""

    def __init__(
        self,
        store_factory: Callable[[], Store],
        config: TaxiiConfig,
        keys: SharingKeys | None,
        known: Callable[[], Mapping[str, Iterable[str]]] | None,
    ) -> None:
        self.store_factory = store_factory
        self.config = config
        self.keys = keys
        self.auth = PartnerAuth()
        self.reader_ids = ReaderIds(keys.id_key) if keys is not None else None
        self.released: TtlLru[dict[str, Any]] = TtlLru(
            config.release_cache_seconds, config.release_cache_items
        )
        self.principals: TtlLru[Principal] = TtlLru(5.0, 10_000)
        self.collections: TtlLru[dict[str, Any]] = TtlLru(5.0, 10_000)
        self.known = TtlValue(
            known or (lambda: known_for_sharing(store_factory())), config.known_refresh_seconds
        )

    def sharing(self) -> Sharing:
        return Sharing.of(self.store_factory())

    def principal(self, request: Request, sharing: Sharing) -> Principal:
        user, secret = basic_credentials(request)
        client = request.client.host if request.client is not None else "-"
        try:
            self.auth.check(user, secret, client, sharing.partners.secret_hash)
        except SignInRefused as exc:
            if exc.retry_after is not None:
                raise TaxiiError(
                    429, "Too Many Requests", exc.reason, **{"Retry-After": str(exc.retry_after)}
                ) from None
            raise TaxiiError(401, "Unauthorized", exc.reason, **{"WWW-Authenticate": "Basic"}) from None
        cached = self.principals.get(user)  # rights and rules are re-read at most every 5 seconds
        if cached is not None:
            return cached
        partner = sharing.partners.get(user)
        if partner is None:  # removed since the cache entry was made
            raise TaxiiError(401, "Unauthorized", "unknown partner", **{"WWW-Authenticate": "Basic"})
        who = Principal(partner, sharing.partners.rights(user))
        self.principals.put(user, who)
        return who

    def collection(
        self, sharing: Sharing, who: Principal, cid: str, *, write: bool = False
    ) -> dict[str, Any]:
        coll = self.collections.get(cid)  # collections change rarely: re-read at most every 5 seconds
        if coll is None:
            coll = sharing.collections.get(cid)
            if coll is not None:
                self.collections.put(cid, coll)
        if coll is None or coll["id"] != cid:
            raise TaxiiError(404, "Not Found", "no such collection")
        can_read, can_write = who.rights.get(cid, (False, False))
        if not (can_write if write else can_read):
            raise TaxiiError(
                403, "Forbidden", f"partner has no {'write' if write else 'read'} right on this collection"
            )
        return coll

    def collection_resource(self, coll: Mapping[str, Any], who: Principal) -> dict[str, Any]:
        can_read, can_write = who.rights.get(str(coll["id"]), (False, False))
        out = {
            "id": coll["id"],
            "title": coll["title"],
            "can_read": can_read,
            "can_write": can_write,
            "media_types": [STIX_MEDIA],
        }
        if coll.get("description"):
            out["description"] = coll["description"]
        if coll.get("alias"):
            out["alias"] = coll["alias"]
        return out

    def page(self, sharing: Sharing, cid: str, f: Filters) -> tuple[list[StoredObject], bool]:
        page = sharing.objects.page(
            cid,
            added_after=f.added_after,
            ids=f.ids,
            types=f.types,
            versions=f.versions,
            spec_versions=f.spec_versions,
            limit=f.limit,
            after_seq=f.after_seq,
        )
        return page.items, page.more

    def release(
        self, sharing: Sharing, cid: str, items: list[StoredObject], who: Principal
    ) -> list[tuple[StoredObject, dict[str, Any]]]:
        # objects the reader sent us keep the ids it gave them (it knows them already)
        own = {it.id for it in items if it.source == who.name}

        def context(ids: set[str]) -> list[dict[str, Any]]:
            found = sharing.objects.page(cid, ids=sorted(ids), limit=len(ids)).items
            own.update(it.id for it in found if it.source == who.name)
            return [orjson.loads(it.body) for it in found]

        released = release_page(
            items,
            who.partner,
            self.keys,
            context,
            known=self.known.get(),
            cache=self.released,
            id_scope=reader_scope(who.name, cid),
            keep_ids=own,
        )
        if self.reader_ids is not None:
            self.reader_ids.served(who.name, cid, [(str(obj["id"]), row.id) for row, obj in released])
        return released

    def wanted(self, sharing: Sharing, cid: str, who: Principal, ids: Sequence[str]) -> tuple[str, ...]:
        """Stored ids that may leave under the requested ids for this reader (see taxii_ids)."""
        ids = tuple(normalise_id(i) for i in ids)
        if not ids or self.reader_ids is None:
            return ids
        return self.reader_ids.stored_ids(sharing, who.name, cid, ids)

    def fetch(
        self, sharing: Sharing, cid: str, f: Filters, who: Principal, named: Sequence[str] = ()
    ) -> tuple[list[StoredObject], bool, list[tuple[StoredObject, dict[str, Any]]]]:
        """One page for a reader: rows, whether more follow, and what leaves the door. With ``named``
        ids, only objects that leave under one of them are kept (a raw stored id finds nothing)."""
        if named:
            f = Filters(
                f.added_after,
                self.wanted(sharing, cid, who, named),
                f.types,
                f.versions,
                f.spec_versions,
                f.limit,
                f.after_seq,
            )
        items, more = self.page(sharing, cid, f)
        released = self.release(sharing, cid, items, who)
        if named:
            keep = {normalise_id(i) for i in named}
            released = [(row, obj) for row, obj in released if obj.get("id") in keep]
        return items, more, released

    def envelope(
        self, items: list[StoredObject], more: bool, released: list[tuple[StoredObject, dict[str, Any]]]
    ) -> Response:
        parts = [b'{"more":', b"true" if more else b"false"]
        if more and items:
            parts.append(b',"next":"' + str(items[-1].seq).encode() + b'"')
        parts.append(b',"objects":[' + b",".join(orjson.dumps(obj) for _, obj in released) + b"]}")
        return taxii_response(b"".join(parts), headers=added_headers([row.date_added for row, _ in released]))

    def add_objects(self, sharing: Sharing, cid: str, raw: bytes, who: Principal) -> Response:
        if len(raw) > self.config.max_content_length:
            raise TaxiiError(413, "Payload Too Large", f"more than {self.config.max_content_length} bytes")
        custom = frozenset(self.config.allow_custom)
        return taxii_response(add_envelope(sharing, cid, raw, who.name, custom), status=202)


def create_taxii_router(
    store_factory: Callable[[], Store],
    *,
    config: TaxiiConfig | None = None,
    keys: SharingKeys | None = None,
    known: Callable[[], Mapping[str, Iterable[str]]] | None = None,
    prefix: str = "/taxii2",
) -> APIRouter:
    """TAXII 2.1 routes: discovery at ``{prefix}/``, one API root at ``{prefix}/{config.api_root}/``.

    ``store_factory`` returns the (long-lived) store of this organisation; ``keys`` are the sharing
    community's keys used by the exit door (none: the server answers 503 instead of serving objects);
    ``known`` returns the internal identifiers to tokenise (default: those our incidents, alerts and
    inventory name, re-read every ``config.known_refresh_seconds``).
    """
    cfg = config or TaxiiConfig()
    svc = _Service(store_factory, cfg, keys, known)
    router = APIRouter()
    root = f"{prefix}/{cfg.api_root}"

    def guarded(handler: Callable[..., Response]) -> Callable[..., Response]:
        def run(*args: Any, **kwargs: Any) -> Response:
            try:
                return handler(*args, **kwargs)
            except TaxiiError as exc:
                return exc.response()

        return run

    def enter(request: Request, cid: str | None = None) -> tuple[Sharing, Principal]:
        """What every route does first: authenticate, check the Accept header, and (given ``cid``)
        check that the collection exists and the partner may read it."""
        check_params(request)
        sh = svc.sharing()
        who = svc.principal(request, sh)
        check_accept(request)
        if cid is not None:
            svc.collection(sh, who, cid)
        return sh, who

    def page_filters(request: Request) -> Filters:
        return parse_filters(request, default_limit=cfg.default_limit, max_limit=cfg.max_limit)

    @router.get(f"{prefix}/", include_in_schema=False)
    def discovery(request: Request) -> Response:
        def go() -> Response:
            svc.principal(request, svc.sharing())
            check_accept(request)
            # never built from the Host header (a client could make us announce its host); TAXII 2.1
            # allows relative API root URLs, used when no public URL is configured
            base = cfg.public_url.rstrip("/") if cfg.public_url else ""
            api_root_url = f"{base}{root}/"
            body: dict[str, Any] = {
                "title": cfg.title,
                "description": cfg.description,
                "default": api_root_url,
                "api_roots": [api_root_url],
            }
            if cfg.contact:
                body["contact"] = cfg.contact
            return taxii_response(body)

        return guarded(go)()

    @router.get(f"{root}/", include_in_schema=False)
    def api_root(request: Request) -> Response:
        def go() -> Response:
            svc.principal(request, svc.sharing())
            check_accept(request)
            return taxii_response(
                {
                    "title": cfg.title,
                    "description": cfg.description,
                    "versions": [TAXII_MEDIA],
                    "max_content_length": cfg.max_content_length,
                }
            )

        return guarded(go)()

    @router.get(f"{root}/collections/", include_in_schema=False)
    def collections(request: Request) -> Response:
        def go() -> Response:
            sh, who = enter(request)
            visible = [c for c in sh.collections.list() if any(who.rights.get(str(c["id"]), (False, False)))]
            return taxii_response({"collections": [svc.collection_resource(c, who) for c in visible]})

        return guarded(go)()

    @router.get(f"{root}/collections/{{cid}}/", include_in_schema=False)
    def collection(request: Request, cid: str) -> Response:
        def go() -> Response:
            sh, who = enter(request)
            coll = sh.collections.get(cid)
            if coll is None or coll["id"] != cid:
                raise TaxiiError(404, "Not Found", "no such collection")
            if not any(who.rights.get(cid, (False, False))):
                raise TaxiiError(403, "Forbidden", "partner has no right on this collection")
            return taxii_response(svc.collection_resource(coll, who))

        return guarded(go)()

    @router.get(f"{root}/collections/{{cid}}/objects/", include_in_schema=False)
    def get_objects(request: Request, cid: str) -> Response:
        def go() -> Response:
            sh, who = enter(request, cid)
            f = page_filters(request)
            items, more, released = svc.fetch(sh, cid, f, who, f.ids)
            return svc.envelope(items, more, released)

        return guarded(go)()

    @router.post(f"{root}/collections/{{cid}}/objects/", include_in_schema=False)
    async def add_objects(request: Request, cid: str) -> Response:
        def admit() -> tuple[Sharing, Principal]:  # authenticate and authorise before any body is read
            sh, who = enter(request)
            check_content_type(request)
            svc.collection(sh, who, cid, write=True)
            return sh, who

        try:
            sh, who = await run_in_threadpool(admit)
            chunks: list[bytes] = []
            size = 0
            async for chunk in request.stream():  # counted as it arrives, whatever the framing
                size += len(chunk)
                if size > cfg.max_content_length:
                    raise TaxiiError(413, "Payload Too Large", f"more than {cfg.max_content_length} bytes")
                chunks.append(chunk)
        except TaxiiError as exc:  # the body was not read to its end: close, or the server drains it
            exc.headers["Connection"] = "close"
            return exc.response()
        raw = b"".join(chunks)
        return await run_in_threadpool(guarded(lambda: svc.add_objects(sh, cid, raw, who)))

    @router.get(f"{root}/collections/{{cid}}/objects/{{oid}}/", include_in_schema=False)
    def get_object(request: Request, cid: str, oid: str) -> Response:
        def go() -> Response:
            sh, who = enter(request, cid)
            items, more, released = svc.fetch(sh, cid, page_filters(request), who, (oid,))
            if not released:
                raise TaxiiError(404, "Not Found", "no such object")
            return svc.envelope(items, more, released)

        return guarded(go)()

    @router.delete(f"{root}/collections/{{cid}}/objects/{{oid}}/", include_in_schema=False)
    def delete_object(request: Request, cid: str, oid: str) -> Response:
        def go() -> Response:
            sh, who = enter(request, cid)
            svc.collection(sh, who, cid, write=True)
            versions = parse_filters(request, default_limit=1, max_limit=1).versions
            f = Filters(None, (), (), "all", (), cfg.max_limit, None)
            _, _, released = svc.fetch(sh, cid, f, who, (oid,))
            stored = {row.id for row, _ in released}  # the object the partner sees under this id
            chosen = versions if isinstance(versions, tuple) else "all"
            if not stored or not sum(sh.objects.delete(cid, sid, chosen) for sid in stored):
                raise TaxiiError(404, "Not Found", "no such object")
            return Response(status_code=200)

        return guarded(go)()

    @router.get(f"{root}/collections/{{cid}}/objects/{{oid}}/versions/", include_in_schema=False)
    def get_versions(request: Request, cid: str, oid: str) -> Response:
        def go() -> Response:
            sh, who = enter(request, cid)
            f = page_filters(request)
            f = Filters(f.added_after, (), (), "all", f.spec_versions, f.limit, f.after_seq)
            items, more, released = svc.fetch(sh, cid, f, who, (oid,))
            if not released:
                raise TaxiiError(404, "Not Found", "no such object")
            body: dict[str, Any] = {
                "more": more,
                "versions": [object_version(row, obj) for row, obj in released],
            }
            if more:
                body["next"] = str(items[-1].seq)
            return taxii_response(body, headers=added_headers([row.date_added for row, _ in released]))

        return guarded(go)()

    @router.get(f"{root}/collections/{{cid}}/manifest/", include_in_schema=False)
    def manifest(request: Request, cid: str) -> Response:
        def go() -> Response:
            sh, who = enter(request, cid)
            f = page_filters(request)
            items, more, released = svc.fetch(sh, cid, f, who, f.ids)
            entries = [
                {
                    "id": obj["id"],
                    "date_added": taxii_timestamp(row.date_added),
                    "version": object_version(row, obj),
                    "media_type": STIX_MEDIA,
                }
                for row, obj in released
            ]
            body: dict[str, Any] = {"more": more, "objects": entries}
            if more and items:
                body["next"] = str(items[-1].seq)
            return taxii_response(body, headers=added_headers([row.date_added for row, _ in released]))

        return guarded(go)()

    def status(request: Request, sid: str) -> Response:
        def go() -> Response:
            check_params(request)
            sh = svc.sharing()
            who = svc.principal(request, sh)
            check_accept(request)
            found = sh.status.get(sid, submitter=who.name)  # another partner's status does not exist
            if found is None:
                raise TaxiiError(404, "Not Found", "no such status")
            return taxii_response(found)

        return guarded(go)()

    router.add_api_route(f"{root}/status/{{sid}}/", status, methods=["GET"], include_in_schema=False)
    router.add_api_route(f"{root}/status/{{sid}}", status, methods=["GET"], include_in_schema=False)
    return router


def create_taxii_app(
    store_factory: Callable[[], Store],
    *,
    config: TaxiiConfig | None = None,
    keys: SharingKeys | None = None,
    known: Callable[[], Mapping[str, Iterable[str]]] | None = None,
) -> FastAPI:
    """A standalone FastAPI app serving only TAXII 2.1 (tests, benchmark, a dedicated sharing host)."""
    app = FastAPI(title="healthsec TAXII 2.1", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(create_taxii_router(store_factory, config=config, keys=keys, known=known))
    return app
