"""Threat-intelligence use cases: import CSAF / KEV / EPSS, poll CSAF providers, match advisories to the
inventory (feeding vulnerabilities, KEV and EPSS to risk), list matches, and raise incidents named by
partner reports. The CLI, the API and the console call these and nothing else."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from healthsec.analyze.advisories import Advisory
from healthsec.analyze.advisory_match import MIN_CONFIDENCE, AdvisoryMatch, match_advisories
from healthsec.analyze.vulns import Vulnerability, VulnError
from healthsec.ingest.intel.csaf import CsafError, parse_csaf, read_csaf_paths
from healthsec.ingest.intel.feeds import FeedError, parse_epss, parse_kev
from healthsec.store import Store

Fetch = Callable[[str], bytes]
CSAF_SOURCE = "csaf:"


@dataclass
class CsafImport:
    stored: int = 0
    kept_newer: int = 0
    errors: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)


def http_fetch(timeout: float = 30.0, max_bytes: int = 20 * 1024 * 1024) -> Fetch:
    """A fetcher over HTTPS (httpx), bounded in time and size; only built when a URL is configured."""
    import httpx

    def fetch(url: str) -> bytes:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"{url}: only http(s) URLs are fetched")
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as resp:
            resp.raise_for_status()
            chunks, size = [], 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ValueError(f"{url}: larger than {max_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks)

    return fetch


def _store_advisories(store: Store, advisories: list[Advisory], errors: list[str]) -> CsafImport:
    from healthsec.store.intel import intel

    stored, older = intel(store).upsert_advisories(advisories)
    store.audit.record("intel", "intel.import_csaf", f"{stored} advisories", errors=len(errors))
    return CsafImport(stored, older, errors, [a.id for a in advisories])


def import_csaf(store: Store, targets: Iterable[str], fetch: Fetch | None = None) -> CsafImport:
    """Files, directories or (with ``fetch``) URLs; bad documents are listed, the others all stored."""
    advisories: list[Advisory] = []
    errors: list[str] = []
    paths: list[Path] = []
    for target in targets:
        if target.startswith(("http://", "https://")):
            if fetch is None:
                errors.append(f"{target}: fetching URLs is not enabled here")
                continue
            try:
                advisories.append(parse_csaf(fetch(target), target))
            except CsafError as exc:
                errors.append(str(exc))
            except Exception as exc:  # network and HTTP errors: name the URL, keep the others
                errors.append(f"{target}: cannot fetch ({type(exc).__name__}: {str(exc)[:200]})")
        else:
            paths.append(Path(target))
    batch = read_csaf_paths(paths)
    advisories += batch.advisories
    errors += [str(e) for e in batch.errors]
    return _store_advisories(store, advisories, errors)


def provider_documents(metadata_url: str, fetch: Fetch) -> list[str]:
    """URLs of the CSAF documents a provider lists: ``distributions[].directory_url`` (its ``index.txt``)
    and ``distributions[].rolie.feeds[].url`` (each entry's ``content.src``), per CSAF 2.0 section 7."""
    import orjson

    meta = orjson.loads(fetch(metadata_url))
    if not isinstance(meta, dict) or "distributions" not in meta:
        raise ValueError(f"{metadata_url}: not a CSAF provider-metadata.json (no 'distributions')")
    urls: list[str] = []
    for dist in meta.get("distributions") or []:
        directory = dist.get("directory_url")
        if directory:
            base = directory.rstrip("/") + "/"
            index = fetch(urljoin(base, "index.txt")).decode("utf-8")
            urls += [
                urljoin(base, line.strip()) for line in index.splitlines() if line.strip().endswith(".json")
            ]
        for feed in (dist.get("rolie") or {}).get("feeds") or []:
            doc = orjson.loads(fetch(feed["url"]))
            for entry in (doc.get("feed") or {}).get("entry") or []:
                src = (entry.get("content") or {}).get("src")
                if src:
                    urls.append(urljoin(feed["url"], src))
    return list(dict.fromkeys(urls))


def poll_providers(store: Store, metadata_urls: Iterable[str], fetch: Fetch) -> CsafImport:
    """One polling round over configured providers (the service schedules it; nothing is polled by
    default). Advisories already held at the same or a newer revision are left as they are."""
    targets: list[str] = []
    errors: list[str] = []
    for url in metadata_urls:
        try:
            targets += provider_documents(url, fetch)
        except Exception as exc:
            errors.append(f"{url}: {type(exc).__name__}: {str(exc)[:200]}")
    res = import_csaf(store, targets, fetch)
    res.errors[:0] = errors
    return res


async def poll_on_schedule(
    store: Store,
    metadata_urls: Iterable[str],
    interval_s: float,
    fetch: Fetch,
    done: Callable[[CsafImport | Exception], None] = lambda _res: None,
) -> None:
    """The service's scheduled job (``healthsec serve`` starts it only when providers are configured): a
    polling round at start and then every ``interval_s`` seconds, each run off the event loop. A round
    that fails (database away) is handed to ``done`` and the next one tries again; cancel to stop."""
    import asyncio

    urls = list(metadata_urls)
    while True:
        try:
            done(await asyncio.to_thread(poll_providers, store, urls, fetch))
        except Exception as exc:
            done(exc)
        await asyncio.sleep(interval_s)


@dataclass(frozen=True)
class AdvisoriesPublished:
    collection: str
    collection_id: str
    advisories: int
    added: int
    duplicates: int


def publish_advisories(
    store: Store, *, actor: str, producer: str, tlp: str = "clear", collection: str = "advisories"
) -> AdvisoriesPublished:
    """Put the stored advisories as STIX (``report`` + CVE ``vulnerability`` objects) into a TAXII
    collection; partners granted read on it get them through the same exit door as our incidents."""
    from healthsec.services.common import Refused
    from healthsec.services.share import parse_tlp
    from healthsec.share.stix import advisory_bundle
    from healthsec.store.intel import intel
    from healthsec.store.sharing import Sharing

    level = parse_tlp(tlp)
    advisories = intel(store).advisories()
    bundle = advisory_bundle(advisories, producer=producer, tlp=level)
    reports = sum(1 for o in bundle["objects"] if o["type"] == "report")
    if not reports:
        raise Refused("no advisory with a CVE to publish (import CSAF advisories first)")
    sh = Sharing.of(store)
    coll = sh.collections.ensure(collection, "Medical-device advisories")
    res = sh.objects.add_many(coll["id"], bundle["objects"])
    store.audit.record(actor, "share.publish", collection, added=len(res.added), tlp=level.value)
    return AdvisoriesPublished(collection, coll["id"], reports, len(res.added), len(res.duplicates))


@dataclass(frozen=True)
class FeedImport:
    feed: str
    version: str | None
    as_of: str
    entries: int
    replaced: bool
    held_as_of: str | None = None
    findings_updated: int = 0


def import_kev(store: Store, raw: bytes, name: str) -> FeedImport:
    """Replace the stored KEV catalogue unless the stored one is newer; refresh flags on findings."""
    from healthsec.store.intel import intel

    cat = parse_kev(raw, name)  # FeedError propagates: nothing written
    held = intel(store).replace_kev(cat)
    updated = refresh_findings(store) if held is None else 0
    return FeedImport(
        "kev",
        cat.version,
        cat.released.isoformat(),
        len(cat.entries),
        held is None,
        held.as_of if held else None,
        updated,
    )


def import_epss(store: Store, raw: bytes, name: str) -> FeedImport:
    from healthsec.store.intel import intel

    scores = parse_epss(raw, name)
    held = intel(store).replace_epss(scores)
    updated = refresh_findings(store) if held is None else 0
    return FeedImport(
        "epss",
        scores.model_version,
        scores.score_date.isoformat(),
        len(scores.scores),
        held is None,
        held.as_of if held else None,
        updated,
    )


def refresh_findings(store: Store) -> int:
    """Set KEV status and EPSS score on every stored finding from the current feeds; return changes."""
    from healthsec.store.intel import intel
    from healthsec.store.vulns import vulns

    repo = vulns(store)
    found = repo.list()
    cves = {v.cve for v in found}
    kev, epss = intel(store).kev(cves), intel(store).epss(cves)
    changed = []
    for v in found:
        new = dataclasses.replace(
            v, known_exploited=True if v.cve in kev else v.known_exploited, epss=epss.get(v.cve, v.epss)
        )
        if new != v:
            changed.append(new)
    repo.upsert_many(changed)
    return len(changed)


@dataclass(frozen=True)
class MatchRun:
    matches: list[AdvisoryMatch]
    findings: int
    removed: int


def match_inventory(store: Store, min_confidence: float = MIN_CONFIDENCE) -> MatchRun:
    """Match every stored advisory to every asset; a matched asset gets each CVE of the product as a
    finding (CVSS, KEV status, EPSS), which risk and attack paths read. Findings a previous run made
    that no longer match are removed; findings of scanners and inventories are never touched."""
    from healthsec.store.intel import intel
    from healthsec.store.vulns import vulns

    repo = intel(store)
    advisories = {a.id: a for a in repo.advisories()}
    matches = match_advisories(advisories.values(), store.assets.list(), min_confidence)
    repo.replace_matches(matches)
    all_cves = {c for m in matches for c in m.cves}
    kev, epss = repo.kev(all_cves), repo.epss(all_cves)
    findings: dict[str, Vulnerability] = {}
    for m in matches:
        adv = advisories[m.advisory_id]
        for av in adv.vulns:
            if not av.cve or m.product_id not in av.affected:
                continue
            try:
                f = Vulnerability.create(
                    m.asset_id,
                    av.cve,
                    av.cvss_vector,
                    known_exploited=True if av.cve in kev else None,
                    title=f"{adv.id}: {adv.title}"[:300],
                    source=f"{CSAF_SOURCE}{adv.id}",
                    base_score=av.base_score if not av.cvss_vector else None,
                    epss=epss.get(av.cve),
                )
            except VulnError:
                f = Vulnerability.create(
                    m.asset_id,
                    av.cve,
                    None,
                    title=adv.title,
                    source=f"{CSAF_SOURCE}{adv.id}",
                    epss=epss.get(av.cve),
                )
            findings.setdefault(f.id, f)
    vrepo = vulns(store)
    stale = [v for v in vrepo.list() if (v.source or "").startswith(CSAF_SOURCE) and v.id not in findings]
    for v in stale:
        vrepo.delete(v.id)
    vrepo.upsert_many(findings.values())
    store.audit.record("intel", "intel.match", f"{len(matches)} matches", findings=len(findings))
    return MatchRun(matches, len(findings), len(stale))


def match_rows(store: Store) -> list[dict[str, Any]]:
    """Stored matches with the asset's name, each CVE's KEV status and EPSS score, for listing."""
    from healthsec.store.intel import intel

    repo = intel(store)
    matches = repo.matches()
    assets = {a.id: a for a in store.assets.list()}
    cves = {c for m in matches for c in m.cves}
    kev, epss = repo.kev(cves), repo.epss(cves)
    out = []
    for m in matches:
        a = assets.get(m.asset_id)
        out.append(
            {
                "asset_id": m.asset_id,
                "asset": a.name if a else m.asset_id,
                "advisory": m.advisory_id,
                "product": m.product,
                "confidence": m.confidence,
                "method": m.method,
                "reasons": list(m.reasons),
                "cves": list(m.cves),
                "kev": sorted(c for c in m.cves if c in kev),
                "epss_max": max((epss[c] for c in m.cves if c in epss), default=None),
            }
        )
    return out


def advisory(store: Store, advisory_id: str) -> Advisory:
    """One stored advisory; :class:`NotFound` when the organisation has none of that id."""
    from healthsec.services.common import NotFound
    from healthsec.store.intel import intel

    found = intel(store).advisory(advisory_id)
    if found is None:
        raise NotFound("advisory", advisory_id)
    return found


@dataclass(frozen=True)
class IntelOverview:
    """Stored advisories (newest release first) with how many assets each matched, and the feeds' dates."""

    advisories: list[dict[str, Any]]
    feeds: dict[str, Any]  # "kev" / "epss" -> FeedState or None


def intel_overview(store: Store) -> IntelOverview:
    from healthsec.store.intel import intel

    repo = intel(store)
    matched: dict[str, set[str]] = {}
    for m in repo.matches():
        matched.setdefault(m.advisory_id, set()).add(m.asset_id)
    rows = [
        {
            "id": a.id,
            "title": a.title,
            "publisher": a.publisher,
            "released": a.current_release or a.initial_release,
            "cves": len(a.cves),
            "max_cvss": max((v.base_score for v in a.vulns if v.base_score is not None), default=None),
            "assets": len(matched.get(a.id, ())),
        }
        for a in repo.advisories()
    ]
    rows.sort(key=lambda r: str(r["released"] or ""), reverse=True)
    rows.sort(key=lambda r: -int(r["assets"]))  # stable: most matched first, newest first within
    return IntelOverview(rows, {f: repo.feed_state(f) for f in ("kev", "epss")})


def raise_incidents_for_reports(
    store: Store, reports: list[Mapping[str, Any]], objects: list[Mapping[str, Any]]
) -> int:
    """Import-path hook: partner STIX reports whose techniques match open local incidents raise those
    incidents' priority (see :func:`healthsec.analyze.intel_correlate.raise_priority`)."""
    from healthsec.analyze.intel_correlate import raise_priority, report_techniques

    by_id = {str(o.get("id")): o for o in objects}
    techniques: dict[str, set[str]] = {}
    for rep in reports:
        techniques[str(rep.get("id"))] = report_techniques(rep, by_id)
    raised = raise_priority(store.incidents.list(limit=100_000), techniques)
    if raised:
        store.incidents.upsert_many([r.incident for r in raised])
        for r in raised:
            store.audit.record("intel", "incident.priority_raised", r.incident.id, reason=r.reason)
    return len(raised)


__all__ = ["FeedError", "import_csaf", "import_epss", "import_kev", "match_inventory", "poll_providers"]
