"""Sharing use cases: export incidents (STIX or MISP) through the exit door, publish, partners, DP stats."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from healthsec.model import Alert, Incident
from healthsec.services.common import Invalid, NotFound, Refused, attack_kb

if TYPE_CHECKING:
    from healthsec.privacy.pseudonymise import SharingKeys
    from healthsec.share.outbound import Cleared
    from healthsec.share.policy import TLP, PartnerPolicy
    from healthsec.store import Store

Sink = Callable[[bytes], None]
STATS_ACTION = "share.stats"
FORMATS = ("stix", "misp")


@dataclass(frozen=True, slots=True)
class Exported:
    recipient: str
    fmt: str
    tlp: str
    incidents: list[str]
    objects: int
    withheld: int
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Published:
    collection: str
    collection_id: str
    incidents: int
    added: int
    unchanged: int


@dataclass(frozen=True, slots=True)
class StatsReleased:
    period: str
    epsilon: float
    remaining: float
    budget: float
    techniques: int
    table_shared: bool
    table_note: str | None


def parse_tlp(value: str) -> TLP:
    from healthsec.share.policy import TLP

    try:
        return TLP.parse(value)
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def recipient_policy(store: Store, partner: str | None, tlp: TLP) -> PartnerPolicy:
    """The policy of a registered partner, or of the whole community (never above ``tlp``)."""
    from healthsec.share.policy import COMMUNITY_IDENTITY, TLP, PartnerPolicy
    from healthsec.share.taxii_server import partner_policy
    from healthsec.store.sharing import Sharing

    if partner is None:
        if tlp is TLP.AMBER_STRICT:
            raise Invalid("TLP:AMBER+STRICT goes only to a named organisation: pass --partner NAME")
        return PartnerPolicy("community", str(COMMUNITY_IDENTITY["id"]), max_tlp=tlp)
    record = Sharing.of(store).partners.get(partner)
    if record is None:
        raise NotFound("partner", partner, message=f"unknown partner {partner!r}")
    try:
        return partner_policy(record)
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def incidents_with_alerts(
    store: Store, incident_ids: Sequence[str] = ()
) -> tuple[list[Incident], list[Alert]]:
    """The named incidents (default: all) and their alerts."""
    if incident_ids:
        incidents: list[Incident] = []
        for iid in incident_ids:
            inc = store.incidents.get(iid)
            if inc is None:
                raise NotFound("incident", iid)
            incidents.append(inc)
    else:
        incidents = store.incidents.list(limit=max(store.incidents.count(), 1))
    alerts = [a for i in incidents for aid in i.alert_ids if (a := store.alerts.get(aid)) is not None]
    return incidents, alerts


def _technique_names(cleared: Cleared, warnings: list[str]) -> dict[str, str]:
    """ATT&CK names from the pinned local copy, so MISP galaxy tags match MISP's clusters."""
    ids = {
        str(r.get("external_id"))
        for o in cleared.objects
        if o.get("type") == "attack-pattern"
        for r in o.get("external_references") or ()
        if r.get("source_name") == "mitre-attack"
    }
    kb, why = attack_kb()
    if kb is None:
        warnings.append(f"{why}; galaxy tags carry ids only")
        return {}
    return {t: tech.name for t in ids if (tech := kb.technique(t)) is not None}


def _encode(cleared: Cleared, fmt: str, title: str | None, warnings: list[str]) -> bytes:
    if fmt == "misp":
        from healthsec.share.misp import dumps_misp, to_misp_event

        try:
            event = to_misp_event(cleared, title=title, technique_names=_technique_names(cleared, warnings))
        except ImportError as exc:  # misp-stix is installed with the test extra
            raise Refused(f"MISP export needs misp-stix (pip install misp-stix): {exc}") from None
        return dumps_misp(event)
    from healthsec.share.stix import dumps_bundle

    return dumps_bundle(cleared.bundle())


def clear_for_recipient(
    store: Store,
    keys: SharingKeys,
    *,
    producer: str,
    incident_ids: Sequence[str] = (),
    tlp: str = "amber",
    partner: str | None = None,
    internal_networks: Iterable[str] = (),
) -> tuple[PartnerPolicy, list[Incident], Cleared, TLP]:
    """The single exit door: incidents as STIX, then the privacy transforms, TLP and the partner's rules.

    Nothing is written or recorded; :class:`Refused` when the door lets nothing out.
    """
    from healthsec.share.known import known_from_store
    from healthsec.share.outbound import known_identifiers, outbound
    from healthsec.share.policy import TLP
    from healthsec.share.stix import export_bundle

    level = parse_tlp(tlp)
    if level is TLP.RED:
        raise Refused("TLP:RED never leaves this organisation; nothing was written")
    recipient = recipient_policy(store, partner, level)
    incidents, alerts = incidents_with_alerts(store, incident_ids)
    if not incidents:
        raise Refused("no incidents to share (run `healthsec incidents correlate` or name an incident)")
    bundle = export_bundle(incidents, alerts, producer=producer, tlp=level)
    known = known_identifiers(incidents, alerts)
    for kind, values in known_from_store(store).items():  # inventory names appear in prose too
        known.setdefault(kind, set()).update(values)
    try:
        cleared = outbound(
            bundle["objects"], recipient, keys, known=known, internal_networks=tuple(internal_networks)
        )
    except ValueError as exc:
        raise Invalid(f"--internal-net: {exc}") from None
    shared = [o for o in cleared.objects if o.get("type") not in ("marking-definition", "identity")]
    if not shared:
        raise Refused(
            f"the policy for {recipient.name!r} withholds everything ({len(cleared.withheld)} objects)"
        )
    return recipient, incidents, cleared, level


@dataclass(frozen=True, slots=True)
class Preview:
    """Exactly what a recipient would receive (the exit door's bytes) and how much was withheld."""

    recipient: str
    tlp: str
    incidents: list[str]
    objects: int
    withheld: int
    types: dict[str, int]
    body: str


def preview_export(
    store: Store,
    keys: SharingKeys,
    *,
    producer: str,
    incident_id: str,
    partner: str | None = None,
    tlp: str = "amber",
) -> Preview:
    """The STIX bundle a partner (or the community) would receive for one incident; nothing leaves."""
    import orjson

    from healthsec.share.stix import dumps_bundle

    recipient, incidents, cleared, level = clear_for_recipient(
        store, keys, producer=producer, incident_ids=[incident_id], tlp=tlp, partner=partner
    )
    raw = dumps_bundle(cleared.bundle())
    types: dict[str, int] = {}
    for o in cleared.objects:
        types[str(o.get("type"))] = types.get(str(o.get("type")), 0) + 1
    pretty = orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2).decode()
    return Preview(
        recipient.name,
        level.value,
        [i.id for i in incidents],
        len(cleared.objects),
        len(cleared.withheld),
        dict(sorted(types.items())),
        pretty,
    )


def export_incidents(
    store: Store,
    keys: SharingKeys,
    *,
    sink: Sink,
    actor: str,
    producer: str,
    incident_ids: Sequence[str] = (),
    tlp: str = "amber",
    partner: str | None = None,
    fmt: str = "stix",
    internal_networks: Iterable[str] = (),
) -> Exported:
    """Incidents for a partner as STIX 2.1 or MISP: privacy transforms, TLP and the partner's rules apply.

    The bytes go to ``sink`` (a file, an HTTP answer); nothing is written when any check refuses.
    """
    if fmt not in FORMATS:
        raise Invalid(f"--format must be stix or misp, not {fmt!r}")
    recipient, incidents, cleared, level = clear_for_recipient(
        store,
        keys,
        producer=producer,
        incident_ids=incident_ids,
        tlp=tlp,
        partner=partner,
        internal_networks=internal_networks,
    )
    title = incidents[0].title if len(incidents) == 1 else f"{len(incidents)} incidents from {producer}"
    warnings: list[str] = []
    sink(_encode(cleared, fmt, title, warnings))
    ids = [i.id for i in incidents]
    store.audit.record(
        actor,
        "share.export",
        recipient.name,
        format=fmt,
        tlp=level.value,
        incidents=ids,
        objects=len(cleared.objects),
        withheld=len(cleared.withheld),
    )
    return Exported(
        recipient.name, fmt, level.value, ids, len(cleared.objects), len(cleared.withheld), warnings
    )


def publish(
    store: Store, *, actor: str, producer: str, tlp: str = "amber", collection: str = "ours"
) -> Published:
    """Put our incidents and their alerts as STIX into our TAXII collection (served through the exit door)."""
    from healthsec.share.stix import export_bundle
    from healthsec.store.sharing import Sharing

    level = parse_tlp(tlp)
    incidents, alerts = incidents_with_alerts(store)
    if not incidents:
        raise Refused("no incidents to publish (run the analysis first)")
    bundle = export_bundle(incidents, alerts, producer=producer, tlp=level)
    sh = Sharing.of(store)
    coll = sh.collections.ensure(collection, "Published by us" if collection == "ours" else collection)
    res = sh.objects.add_many(coll["id"], bundle["objects"])
    store.audit.record(actor, "share.publish", collection, added=len(res.added), tlp=level.value)
    return Published(collection, coll["id"], len(incidents), len(res.added), len(res.duplicates))


_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def partner_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a partner's TAXII address (None when it can): https only; plain http only to
    this machine (loopback), where nothing crosses a network."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return "the partner URL is not a URL"
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and (host in _LOOPBACK_HOSTS or host.startswith("127.")):
        return None
    return "the partner URL must be https:// (plain http only to a loopback address)"


def save_partner(
    store: Store,
    name: str,
    organisation: str,
    *,
    actor: str,
    secret: str | None = None,
    url: str | None = None,
    remote_collection: str | None = None,
    push_collection: str | None = None,
    remote_user: str | None = None,
    policy: Mapping[str, Any] | None = None,
    read: Sequence[str] = (),
    write: Sequence[str] = (),
) -> dict[str, Any]:
    """Add or update a partner (policy checked, secret stored hashed) and grant rights on our collections."""
    from healthsec.share.policy import policy_from_dict, policy_to_dict
    from healthsec.share.stix_ids import sdo_id
    from healthsec.store.sharing import Sharing

    if not name.strip() or not organisation.strip():
        raise Invalid("a partner needs a name and an organisation")
    org = (
        organisation
        if organisation.startswith("identity--")
        else sdo_id("identity", "organisation", organisation)
    )
    if url is not None:
        problem = partner_url_problem(url)
        if problem is not None:
            raise Invalid(problem, loc=("url",))
    try:
        rules = None if policy is None else policy_to_dict(policy_from_dict(name, org, policy))
    except (ValueError, TypeError, KeyError) as exc:
        raise Invalid(str(exc), loc=("policy",)) from None
    sh = Sharing.of(store)
    try:
        sh.partners.add(
            name,
            org,
            secret=secret,
            url=url,
            remote_collection=remote_collection,
            remote_user=remote_user,
            policy=rules,
            push_collection=push_collection,
        )
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    for alias in sorted(set(read) | set(write)):
        coll = sh.collections.ensure(alias, alias)
        sh.partners.grant(name, coll["id"], read=alias in read, write=alias in write)
    store.audit.record(actor, "partner.put", name, organisation=org, read=list(read), write=list(write))
    saved = sh.partners.get(name)
    assert saved is not None
    return saved


@dataclass(frozen=True, slots=True)
class PartnerState:
    """A partner as listed: its record (never its secret), rights on our collections, pull cursor."""

    partner: dict[str, Any]
    rights: dict[str, str]  # collection alias -> "r", "w" or "rw"
    cursor: dict[str, Any] | None


def list_partners(store: Store) -> list[PartnerState]:
    from healthsec.store.sharing import Sharing

    sh = Sharing.of(store)
    names = {c["id"]: c.get("alias") or c["title"] for c in sh.collections.list()}
    out = []
    for p in sh.partners.list():
        rights = {
            names.get(cid, cid): ("r" if r else "") + ("w" if w else "")
            for cid, (r, w) in sh.partners.rights(p["name"]).items()
        }
        out.append(PartnerState(p, rights, sh.cursors.get(p["name"], str(p.get("remote_collection") or ""))))
    return out


def _spent(store: Store, period: str) -> float:
    """Epsilon already released in ``period``, from the audit log (every release is recorded there)."""
    rows = store.audit.list(limit=100_000)
    return sum(
        float(r["detail"].get("epsilon", 0.0))
        for r in rows
        if r["action"] == STATS_ACTION
        and isinstance(r.get("detail"), dict)
        and r["detail"].get("period") == period
    )


def release_stats(
    store: Store,
    keys: SharingKeys,
    *,
    sink: Sink,
    actor: str,
    epsilon: float = 0.5,
    budget: float = 1.0,
    max_techniques: int = 5,
    k: int = 5,
    now: datetime | None = None,
) -> StatsReleased:
    """Noisy counts of incidents by ATT&CK technique (OpenDP); refused once the month's budget is spent."""
    import orjson

    from healthsec.privacy.dp import BudgetExhausted, PrivacyBudget, dp_counts
    from healthsec.privacy.kanon import check_k_anonymity
    from healthsec.share.outbound import outbound_text

    if not epsilon > 0 or not budget > 0:
        raise Invalid("--epsilon and --budget must be positive")
    if max_techniques < 1 or k < 1:
        raise Invalid("--max-techniques and --k must be at least 1")
    period = (now or datetime.now(UTC)).strftime("%Y-%m")
    incidents, _ = incidents_with_alerts(store)
    kb, why = attack_kb()
    if kb is None:
        raise Refused(f"{why}; the key set of the counts must be public")
    universe = {t.id for t in kb.techniques()}  # public key set: reveals nothing
    counts = dict.fromkeys(universe, 0)
    for inc in incidents:
        for tid in sorted(set(inc.techniques) & universe)[:max_techniques]:
            counts[tid] += 1
    pb = PrivacyBudget(total=budget, spent=_spent(store, period))
    try:
        noisy = dp_counts(counts, epsilon, pb, contributions=max_techniques, purpose="incidents by technique")
    except BudgetExhausted as exc:
        raise Refused(f"privacy budget for {period}: {exc}") from None
    rows = [
        {"severity": i.severity.label, "first_tactic": i.tactics[0] if i.tactics else None} for i in incidents
    ]
    table = check_k_anonymity(rows, ["severity", "first_tactic"], k)
    doc: dict[str, Any] = {
        "type": "healthsec-aggregate",
        "period": period,
        "mechanism": "OpenDP Laplace on integer counts",
        "epsilon": epsilon,
        "sensitivity": max_techniques,
        "incidents_by_technique": {t: n for t, n in sorted(noisy.items()) if n > 0},
        "incident_table": rows if table.ok else None,
        "incident_table_withheld": None if table.ok else table.describe(),
    }
    text = outbound_text(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode(), keys)
    sink((text + "\n").encode("utf-8"))
    store.audit.record(actor, STATS_ACTION, None, period=period, epsilon=epsilon, incidents=len(incidents))
    return StatsReleased(
        period,
        epsilon,
        pb.remaining,
        budget,
        len(doc["incidents_by_technique"]),
        table.ok,
        None if table.ok else table.describe(),
    )


SENT_ACTIONS = ("share.export", "share.publish", STATS_ACTION)
RECEIVED_ACTIONS = ("share.import", "share.import-misp")


@dataclass(frozen=True, slots=True)
class SharingOverview:
    """Our TAXII collections (objects held, who may read or write), what left and what came in."""

    collections: list[dict[str, Any]]
    sent: list[dict[str, Any]]
    received: list[dict[str, Any]]
    quarantined: list[dict[str, Any]]


def sharing_overview(store: Store, limit: int = 50) -> SharingOverview:
    """The sharing page's facts, from the sharing tables and the audit log (every exit is recorded)."""
    from healthsec.store.sharing import Sharing

    sh = Sharing.of(store)
    grants: dict[str, dict[str, list[str]]] = {}
    for p in sh.partners.list():
        for cid, (read, write) in sh.partners.rights(p["name"]).items():
            g = grants.setdefault(cid, {"readers": [], "writers": []})
            if read:
                g["readers"].append(p["name"])
            if write:
                g["writers"].append(p["name"])
    collections = [
        {**c, "objects": sh.objects.count(c["id"]), **grants.get(c["id"], {"readers": [], "writers": []})}
        for c in sh.collections.list()
    ]
    rows = store.audit.list(limit * 4, action="share.")

    def pick(actions: tuple[str, ...]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "org"} for r in rows if r["action"] in actions][:limit]

    return SharingOverview(collections, pick(SENT_ACTIONS), pick(RECEIVED_ACTIONS), sh.quarantine.list(limit))
