"""The single exit door for shared data: ``outbound(objects, partner, keys) = policy(privacy(objects))``.

Every export path (STIX file, TAXII responses to partners, MISP, reports) takes a :class:`Cleared`
value, and only :func:`outbound` (or :func:`outbound_text` for prose) can make one: the constructor
demands a module-private token, and writers are typed to accept ``Cleared`` only, so neither mypy nor
the runtime lets an exporter skip the privacy transforms or the partner policy.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from healthsec.model import Alert, EntityKind, Incident
from healthsec.privacy.phi import scrub_obj, scrub_text
from healthsec.privacy.pseudonymise import IpPseudonymiser, Pseudonymiser, SharingKeys
from healthsec.share.policy import Decision, PartnerPolicy, SharingPolicy, StixObject

_DOOR = object()
#: Custom property stamped on every object the privacy transform has cleared (value: key fingerprint).
CLEARED_PROPERTY = "x_healthsec_cleared"
_SCO_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")  # STIX 2.1 section 2.9


def sco_id(stix_type: str, contributing: Mapping[str, object]) -> str:
    """STIX 2.1 deterministic SCO id: UUIDv5 over the canonical JSON of the id-contributing properties."""
    canonical = json.dumps(dict(contributing), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{stix_type}--{uuid.uuid5(_SCO_NAMESPACE, canonical)}"


#: Internal address space pseudonymised by default (private, loopback, link-local, CGNAT, ULA).
DEFAULT_INTERNAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    )
)
# An address may end a sentence ("actors: 10.0.0.5."), so only a following digit or ".digit" disqualifies.
_IPV4_RE = re.compile(r"(?<!\d)(?<!\d\.)(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)")
_IPV6_RE = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f:]*[0-9A-Fa-f](?![0-9A-Fa-f:])")
# Properties that hold structure, not prose: never rewritten by the text transforms.
_STRUCTURAL_KEYS = frozenset(
    {
        "type",
        "spec_version",
        "id",
        "created",
        "modified",
        "valid_from",
        "valid_until",
        "first_seen",
        "last_seen",
        "first_observed",
        "last_observed",
        "published",
        "pattern_type",
        "lang",
        "confidence",
        "count",
        "number_observed",
        "object_marking_refs",
        "created_by_ref",
        "extensions",
        "revoked",
    }
)
# Entity kinds whose values are internal identifiers and become keyed tokens wherever they appear.
_TOKEN_KINDS = {
    EntityKind.HOST: "host",
    EntityKind.USER: "user",
    EntityKind.PATIENT: "patient",
    EntityKind.DEVICE: "device",
    EntityKind.AE_TITLE: "aet",
}
# SCO properties that carry an internal identifier, and the token kind they take.
_SCO_TOKEN_PROPS: dict[str, dict[str, str]] = {
    "user-account": {"user_id": "user", "account_login": "user", "display_name": "user"},
    "email-addr": {"value": "email", "display_name": "person"},
    "mac-addr": {"value": "mac"},
}
# Id-contributing properties (STIX 2.1 section 6) of the SCOs whose values we rewrite.
_SCO_ID_PROPS = {
    "ipv4-addr": ("value",),
    "ipv6-addr": ("value",),
    "email-addr": ("value",),
    "mac-addr": ("value",),
    "domain-name": ("value",),
    "user-account": ("account_type", "user_id", "account_login"),
}


def rekeyed_id(id_key: bytes, oid: str, scope: str | None = None) -> str:
    """The id an object leaves under: a keyed hash of its id (and of ``scope``, e.g. one partner's
    view of one collection, so two readers cannot join their copies); the same input gives the same id."""
    stype, _, _ = oid.partition("--")
    message = oid if scope is None else f"{scope}\x1f{oid}"
    digest = hmac.new(id_key, message.encode(), hashlib.sha256).digest()
    return f"{stype}--{uuid.UUID(bytes=digest[:16], version=4)}"


class Cleared:
    """Objects cleared for one partner by the privacy transforms and the sharing policy."""

    __slots__ = ("objects", "partner", "withheld")

    def __init__(
        self,
        door: object,
        partner: PartnerPolicy,
        objects: Sequence[StixObject],
        withheld: Sequence[Decision],
    ) -> None:
        if door is not _DOOR:
            raise TypeError("Cleared objects come only from healthsec.share.outbound.outbound()")
        self.partner = partner
        self.objects: tuple[StixObject, ...] = tuple(objects)
        self.withheld: tuple[Decision, ...] = tuple(withheld)

    def bundle(self, bundle_id: str | None = None) -> StixObject:
        """The cleared objects as a STIX 2.1 bundle."""
        return {"type": "bundle", "id": bundle_id or f"bundle--{uuid.uuid4()}", "objects": list(self.objects)}


class ClearedText(str):
    """A report or note that passed the privacy transforms (made only by :func:`outbound_text`)."""

    __slots__ = ()

    def __new__(cls, door: object, text: str) -> ClearedText:
        if door is not _DOOR:
            raise TypeError("ClearedText comes only from healthsec.share.outbound.outbound_text()")
        return super().__new__(cls, text)


def known_identifiers(
    incidents: Iterable[Incident] = (), alerts: Iterable[Alert] = ()
) -> dict[str, set[str]]:
    """Internal identifiers named by our incidents and alerts, by token kind (``ip`` kept apart)."""
    known: dict[str, set[str]] = {}
    entities = [e for i in incidents for e in i.entities] + [e for a in alerts for e in a.entities]
    for ent in entities:
        kind = "ip" if ent.kind is EntityKind.IP else _TOKEN_KINDS.get(ent.kind)
        if kind is not None and ent.value.strip():
            known.setdefault(kind, set()).add(ent.value.strip())
    return known


class StixPrivacy:
    """Privacy transform over STIX dicts: internal IPs by Crypto-PAn, identifiers by keyed tokens, PHI
    scrubbed from every prose property, and object ids re-keyed so no id is a hash of a raw identifier."""

    def __init__(
        self,
        keys: SharingKeys,
        known: Mapping[str, Iterable[str]] | None = None,
        internal_networks: Iterable[str] = (),
        keep_ids: Iterable[str] = (),
        id_scope: str | None = None,
    ) -> None:
        self._id_scope = id_scope
        self._ips = IpPseudonymiser(keys.ip_key)
        self._tokens = Pseudonymiser(keys.id_key)
        self._id_key = keys.id_key
        self._internal = DEFAULT_INTERNAL + tuple(
            ipaddress.ip_network(n, strict=False) for n in internal_networks
        )
        self._keep_ids = frozenset(keep_ids)
        pairs: list[tuple[str, str]] = []
        for kind, values in (known or {}).items():
            for value in values:
                if kind == "ip" or len(value) < 3:
                    continue  # IPs go through Crypto-PAn; very short values would shred prose
                pairs.append((value, self._tokens.token(kind, value)))
        pairs.sort(key=lambda p: len(p[0]), reverse=True)
        self._known = pairs
        self._known_re = (
            re.compile("|".join(re.escape(v) for v, _ in pairs), re.IGNORECASE) if pairs else None
        )
        self._known_map = {v.casefold(): t for v, t in pairs}

    @property
    def fingerprint(self) -> str:
        """Public tag of this community key, stamped on cleared objects (reveals nothing of the key)."""
        return hmac.new(self._id_key, b"healthsec/cleared", hashlib.sha256).hexdigest()[:16]

    def __call__(self, objects: list[StixObject]) -> list[StixObject]:
        """Transform objects; ones already cleared under this key pass unchanged, so a second pass
        (a TAXII collection holding cleared objects, served again) changes nothing."""
        ids: dict[str, str] = {}
        out: list[StixObject] = []
        stamp = self.fingerprint
        for obj in objects:
            oid = str(obj.get("id"))
            if obj.get(CLEARED_PROPERTY) == stamp or oid.startswith("marking-definition--"):
                ids[oid] = oid
                out.append(dict(obj))
                continue
            new = self._content(self._sco(obj) if obj.get("type") in _SCO_ID_PROPS else dict(obj))
            if self._is_kept(oid):
                new["id"] = oid
            elif "created" not in obj and new == {**obj, "id": new["id"]}:
                pass  # an SCO left as it was keeps its STIX id: that id reveals nothing the value does not
            elif "created" in obj or obj.get("type") not in _SCO_ID_PROPS:
                new["id"] = self._rekey(oid)
            new[CLEARED_PROPERTY] = stamp
            ids[oid] = str(new["id"])
            out.append(new)
        return [self._refs(o, ids) for o in out]

    # -- values ------------------------------------------------------------------------------------
    def internal(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._internal if net.version == ip.version)

    def ip(self, address: str) -> str:
        return self._ips.ip(address) if self.internal(address) else address

    def text(self, text: str) -> str:
        """Known identifiers to tokens, internal IPs to pseudonyms, then the PHI scrubber."""
        if self._known_re is not None:
            text = self._known_re.sub(lambda m: self._known_map[m.group(0).casefold()], text)
        text = _IPV4_RE.sub(lambda m: self.ip(m.group(0)), text)
        text = _IPV6_RE.sub(lambda m: self.ip(m.group(0)), text)
        return scrub_text(text)

    def _sco(self, obj: Mapping[str, Any]) -> StixObject:
        stype = str(obj["type"])
        new = dict(obj)
        if stype in ("ipv4-addr", "ipv6-addr") and isinstance(obj.get("value"), str):
            value, _, plen = str(obj["value"]).partition("/")
            new["value"] = self.ip(value) + (f"/{plen}" if plen else "")
        elif stype == "domain-name" and isinstance(obj.get("value"), str):
            new["value"] = self.text(str(obj["value"]))
        for prop, kind in _SCO_TOKEN_PROPS.get(stype, {}).items():
            if isinstance(obj.get(prop), str):
                new[prop] = self._tokens.token(kind, str(obj[prop]))
        if new != dict(obj):
            contributing = {p: new[p] for p in _SCO_ID_PROPS[stype] if new.get(p) is not None}
            new["id"] = sco_id(stype, contributing)
        return new

    # -- ids and references --------------------------------------------------------------------------
    def _is_kept(self, oid: str) -> bool:
        return oid in self._keep_ids or oid.startswith(("marking-definition--", "extension-definition--"))

    def _rekey(self, oid: str) -> str:
        return rekeyed_id(self._id_key, oid, self._id_scope)

    def _content(self, obj: StixObject) -> StixObject:
        out: StixObject = {}
        for key, value in obj.items():
            if (
                key in _STRUCTURAL_KEYS
                or key.endswith(("_ref", "_refs"))
                or (obj.get("type") in _SCO_ID_PROPS and key == "value")
            ):
                out[key] = value
            else:
                out[key] = self._prose(value)
        return out

    def _refs(self, obj: StixObject, ids: Mapping[str, str]) -> StixObject:
        out: StixObject = {}
        for key, value in obj.items():
            if key.endswith("_ref") and isinstance(value, str):
                out[key] = ids.get(value, value)
            elif key.endswith("_refs") and isinstance(value, list):
                out[key] = [ids.get(v, v) if isinstance(v, str) else v for v in value]
            else:
                out[key] = value
        return out

    def _prose(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self._prose(v) for v in value]
        if isinstance(value, dict):
            return {k: self._prose(v) for k, v in scrub_obj(value).items()}
        return value


def outbound(
    objects: Sequence[Mapping[str, Any]],
    partner: PartnerPolicy,
    keys: SharingKeys,
    *,
    known: Mapping[str, Iterable[str]] | None = None,
    internal_networks: Iterable[str] = (),
    policy: SharingPolicy | None = None,
    id_scope: str | None = None,
    keep_ids: Iterable[str] = (),
) -> Cleared:
    """Privacy transforms, then the partner's policy: the only way to obtain shareable objects.

    ``id_scope`` makes re-keyed ids particular to one reader's view (see :func:`rekeyed_id`);
    ``keep_ids`` are ids the reader already knows (objects it sent us), which leave unchanged."""
    policy = policy or SharingPolicy()
    keep = [
        str(o["id"])
        for o in objects
        if o.get("type") == "identity" and not partner.anonymous and o.get("identity_class") == "organization"
    ]  # our named identity keeps its public id
    privacy = StixPrivacy(keys, known, internal_networks, keep_ids=[*keep, *keep_ids], id_scope=id_scope)
    kept, withheld = policy.decide(list(objects), partner, transforms=[privacy])
    return Cleared(_DOOR, partner, kept, withheld)


def outbound_text(
    text: str,
    keys: SharingKeys,
    *,
    known: Mapping[str, Iterable[str]] | None = None,
    internal_networks: Iterable[str] = (),
) -> ClearedText:
    """A report or note made safe to leave: identifiers tokenised, internal IPs pseudonymised, PHI removed."""
    return ClearedText(_DOOR, StixPrivacy(keys, known, internal_networks).text(text))
