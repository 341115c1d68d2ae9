"""Alert use cases: list with filters and paging, show one, triage (true/false positive) one or many."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from healthsec.model import Alert, Severity
from healthsec.model.codec import alert_from_dict
from healthsec.model.triage import AlertFeedback, Verdict
from healthsec.services.common import Invalid, NotFound, Page, check_paging

if TYPE_CHECKING:
    from healthsec.store import Store
    from healthsec.store.triage import AlertSql

UNTRIAGED = "untriaged"
MAX_BULK = 10_000
MAX_COMMENT = 2000


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertFilter:
    """Which alerts: every field set narrows the list; ``since`` is inclusive and ``until`` exclusive, so
    ``until`` at or before ``since`` is an empty window that matches nothing (not an error: the published
    API document cannot say "since < until", and a valid request must not be refused).

    ``asset`` is an asset id, name or IP (an inventoried asset matches any of the three in an alert's
    entities); ``technique`` matches the ATT&CK id and its sub-techniques (T1059 matches T1059.001);
    ``verdict`` is true_positive, false_positive or untriaged.
    """

    detector: str | None = None
    min_severity: Severity | None = None
    asset: str | None = None
    technique: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    incident_id: str | None = None
    verdict: str | None = None

    def sql(self) -> AlertSql:
        from healthsec.store.triage import AlertSql

        return AlertSql(
            detector=self.detector,
            min_severity=None if self.min_severity is None else int(self.min_severity),
            since=_utc(self.since),
            until=_utc(self.until),
            incident_id=self.incident_id,
        )

    @property
    def needs_scan(self) -> bool:
        """True when a filter reads the alert bodies (entities, techniques) or the feedback table."""
        return bool(self.asset or self.technique or self.verdict)


@dataclass(frozen=True, slots=True)
class AlertDetail:
    """One alert with its incident and the analyst's verdicts (latest last)."""

    alert: Alert
    incident_id: str | None
    verdict: AlertFeedback | None
    history: list[AlertFeedback]


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None or ts.tzinfo is not None:
        return ts
    return ts.replace(tzinfo=UTC)


def _technique(value: str) -> str:
    return value.strip().upper().removeprefix("ATTACK.")


def _check(flt: AlertFilter) -> None:
    if flt.verdict is not None and flt.verdict != UNTRIAGED:
        Verdict.parse(flt.verdict)  # raises ValueError naming the choices


def _asset_keys(store: Store, asset: str) -> set[str]:
    key = asset.strip().lower()
    for a in store.assets.list():
        keys = {k.lower() for k in (a.id, a.name, a.ip) if k}
        if key in keys:
            return keys
    return {key}  # not inventoried: match the value itself (an IP or host name seen in alerts)


def _matcher(store: Store, flt: AlertFilter) -> Any:
    from healthsec.store.triage import feedback

    keys = _asset_keys(store, flt.asset) if flt.asset else None
    tech = _technique(flt.technique) if flt.technique else None
    want: Verdict | None = None
    if flt.verdict and flt.verdict != UNTRIAGED:
        want = Verdict.parse(flt.verdict)
    labels = {k: f.verdict for k, f in feedback(store).latest().items()} if flt.verdict else {}

    def match(body: dict[str, Any]) -> bool:
        if keys is not None and not any(str(e.get("value", "")).lower() in keys for e in body["entities"]):
            return False
        if tech is not None and not any(
            (t := _technique(str(x))) == tech or t.startswith(tech + ".") for x in body["techniques"]
        ):
            return False
        if flt.verdict is not None:
            return labels.get(body["id"]) == want
        return True

    return match


def _start(store: Store, after: str | None) -> tuple[datetime, str] | None:
    from healthsec.store.triage import alert_queries

    if after is None:
        return None
    key = alert_queries(store).position(after)
    if key is None:
        # a cursor names an alert: an unknown one is "not found" (404), as the API document says
        msg = f"after: no alert {after!r} (pass the next_after of the previous page)"
        raise NotFound("alert", after, message=msg)
    return key


def list_alert_bodies(
    store: Store,
    flt: AlertFilter | None = None,
    *,
    limit: int = 100,
    offset: int = 0,
    with_total: bool = False,
    after: str | None = None,
    newest_first: bool = False,
) -> Page[dict[str, Any]]:
    """Alerts as the stored codec dicts, oldest first (or newest first): the fast read the API sends as it is.

    ``after`` is the previous page's ``next_after`` (its last alert's id): the page starts right after that
    alert through the (org, ts, id) index, as fast deep in the list as at its start; ``offset`` skips from
    there. ``total`` (asked for) counts every match, not only those after the key.
    """
    from healthsec.store.triage import alert_queries

    flt = flt or AlertFilter()
    check_paging(limit, offset)
    try:
        _check(flt)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    q = alert_queries(store)
    key = _start(store, after)
    if not flt.needs_scan:
        items = q.bodies(flt.sql(), limit=limit, offset=offset, after=key, newest_first=newest_first)
        total = q.count(flt.sql()) if with_total else None
        return Page(items, limit, offset, total, _next_after(items, limit))
    match = _matcher(store, flt)
    found: list[dict[str, Any]] = []
    seen = 0
    for body in q.iter_bodies(flt.sql(), after=key, newest_first=newest_first):
        if not match(body):
            continue
        if offset <= seen < offset + limit:
            found.append(body)
        seen += 1
        if not with_total and len(found) == limit:
            break
    if with_total and key is not None:  # the total counts every match, those before the key too
        seen = sum(1 for b in q.iter_bodies(flt.sql()) if match(b))
    return Page(found, limit, offset, seen if with_total else None, _next_after(found, limit))


def count_alerts(store: Store, flt: AlertFilter | None = None, *, at_most: int | None = None) -> int:
    """How many alerts match; with ``at_most``, counting stops there (a list shows "10,000+")."""
    from healthsec.store.triage import alert_queries

    flt = flt or AlertFilter()
    q = alert_queries(store)
    if not flt.needs_scan:
        return q.count(flt.sql(), at_most=at_most)
    match = _matcher(store, flt)
    n = 0
    for body in q.iter_bodies(flt.sql()):
        n += 1 if match(body) else 0
        if at_most is not None and n >= at_most:
            break
    return n


def _next_after(items: list[dict[str, Any]], limit: int) -> str | None:
    return str(items[-1]["id"]) if items and len(items) == limit else None


def alert_page_json(
    store: Store,
    flt: AlertFilter | None = None,
    *,
    limit: int = 100,
    offset: int = 0,
    after: str | None = None,
) -> tuple[list[str], Page[str]]:
    """The API's hot read: a page's bodies as the stored JSON text, spliced into the answer unparsed.

    Filters that read bodies (asset, technique, verdict) and offsets go through
    :func:`list_alert_bodies`; the answer is the same.
    """
    import orjson

    from healthsec.store.triage import alert_queries

    flt = flt or AlertFilter()
    if flt.needs_scan or offset:
        page = list_alert_bodies(store, flt, limit=limit, offset=offset, after=after)
        raw = [orjson.dumps(b).decode() for b in page.items]
        return raw, Page(raw, limit, offset, None, page.next_after)
    check_paging(limit, offset)
    try:
        _check(flt)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    rows = alert_queries(store).raw_bodies(flt.sql(), limit=limit, after=_start(store, after))
    last = rows[-1][1] if rows and len(rows) == limit else None
    texts = [text for text, _ in rows]
    return texts, Page(texts, limit, offset, None, last)


def list_alerts(
    store: Store,
    flt: AlertFilter | None = None,
    *,
    limit: int = 100,
    offset: int = 0,
    with_total: bool = False,
    after: str | None = None,
    newest_first: bool = False,
) -> Page[Alert]:
    """Alerts, oldest first (or newest first), filtered and paged (see :func:`list_alert_bodies`)."""
    page = list_alert_bodies(
        store, flt, limit=limit, offset=offset, with_total=with_total, after=after, newest_first=newest_first
    )
    items = [alert_from_dict(b) for b in page.items]
    return Page(items, page.limit, page.offset, page.total, page.next_after)


@dataclass(frozen=True, slots=True)
class AlertRow:
    """An alert as a list shows it: with its incident and current verdict (None: untriaged)."""

    alert: Alert
    incident_id: str | None
    verdict: Verdict | None


def alert_rows(
    store: Store,
    flt: AlertFilter | None = None,
    *,
    limit: int = 100,
    offset: int = 0,
    with_total: bool = False,
    after: str | None = None,
    newest_first: bool = False,
) -> Page[AlertRow]:
    """Like :func:`list_alerts`, each alert with its incident and current verdict (for an analyst's list)."""
    from healthsec.store.triage import alert_queries, feedback

    page = list_alerts(
        store, flt, limit=limit, offset=offset, with_total=with_total, after=after, newest_first=newest_first
    )
    ids = [a.id for a in page.items]
    labels = feedback(store).latest(ids)
    links = alert_queries(store).incident_of(ids)
    rows = [
        AlertRow(a, links.get(a.id), label.verdict if (label := labels.get(a.id)) else None)
        for a in page.items
    ]
    return Page(rows, page.limit, page.offset, page.total, page.next_after)


def get_alert(store: Store, alert_id: str) -> AlertDetail:
    """One alert with its incident link and verdicts; :class:`NotFound` for an unknown id."""
    from healthsec.store.triage import alert_queries, feedback

    alert = store.alerts.get(alert_id)
    if alert is None:
        raise NotFound("alert", alert_id)
    history = feedback(store).history(alert_id)
    incident = alert_queries(store).incident_of([alert_id]).get(alert_id)
    return AlertDetail(alert, incident, history[-1] if history else None, history)


def triage_alerts(
    store: Store,
    alert_ids: Iterable[str],
    verdict: Verdict | str,
    *,
    actor: str,
    comment: str | None = None,
    now: datetime | None = None,
) -> list[AlertFeedback]:
    """Mark alerts true or false positive, all or none: an unknown id stores nothing and names the ids.

    Each decision is kept as feedback for training (the alert's detector, version and features) and in
    the audit log; a later decision on the same alert supersedes the earlier one, which stays in history.
    """
    from healthsec.store.triage import feedback

    ids = list(dict.fromkeys(alert_ids))
    if not ids:
        raise Invalid("no alert ids given")
    if len(ids) > MAX_BULK:
        raise Invalid(f"at most {MAX_BULK} alerts per triage, not {len(ids)}")
    try:
        label = verdict if isinstance(verdict, Verdict) else Verdict.parse(verdict)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    if comment is not None and len(comment) > MAX_COMMENT:
        raise Invalid(f"comment longer than {MAX_COMMENT} characters")
    if not actor.strip():
        raise Invalid("triage needs the name of who decided")
    when = now or datetime.now(UTC)
    alerts = {a: store.alerts.get(a) for a in ids}
    missing = [a for a, found in alerts.items() if found is None]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise NotFound("alert" if len(missing) == 1 else "alerts", shown)
    decisions = [
        AlertFeedback(
            alert_id=a.id,
            verdict=label,
            actor=actor,
            ts=when,
            detector=a.detector,
            detector_version=a.detector_version,
            comment=comment,
            features=a.features,
        )
        for a in alerts.values()
        if a is not None
    ]
    feedback(store).add_many(decisions)
    store.audit.record(
        actor, "alert.triage", ids[0] if len(ids) == 1 else None, verdict=label.value, alerts=ids[:100]
    )
    return decisions


def triage_alert(
    store: Store,
    alert_id: str,
    verdict: Verdict | str,
    *,
    actor: str,
    comment: str | None = None,
    now: datetime | None = None,
) -> AlertFeedback:
    """Mark one alert true or false positive (see :func:`triage_alerts`)."""
    return triage_alerts(store, [alert_id], verdict, actor=actor, comment=comment, now=now)[0]


def training_labels(store: Store, *, detector: str | None = None) -> list[AlertFeedback]:
    """The current verdict of every triaged alert (of one detector): what a model retrains on."""
    from healthsec.store.triage import feedback

    latest = feedback(store).latest().values()
    return sorted((f for f in latest if detector in (None, f.detector)), key=lambda f: (f.ts, f.alert_id))
