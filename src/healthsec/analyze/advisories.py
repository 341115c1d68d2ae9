"""Advisories as plain typed data (from CSAF 2.0): products affected, CVEs, scores, remediations, threats."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from healthsec.analyze.versions import VersionSpec, parse_version_spec


@dataclass(frozen=True, slots=True, kw_only=True)
class AffectedProduct:
    """One leaf of a CSAF product tree: vendor -> family -> product -> version (range), CPE/PURL if given."""

    product_id: str
    vendor: str | None
    product: str | None
    family: str | None = None
    version: str | None = None  # the product_version / product_version_range text
    version_is_range: bool = False
    full_name: str | None = None
    cpe: str | None = None
    purl: str | None = None

    @property
    def spec(self) -> VersionSpec:
        return parse_version_spec(self.version)


@dataclass(frozen=True, slots=True, kw_only=True)
class Remediation:
    category: str
    details: str
    product_ids: tuple[str, ...] = ()
    url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AdvisoryVuln:
    """One vulnerability of an advisory and the products it affects."""

    cve: str | None
    title: str | None = None
    cwe: str | None = None
    cvss_vector: str | None = None  # the highest-versioned vector given (v4 before v3)
    base_score: float | None = None
    cvss_vectors: tuple[str, ...] = ()
    affected: tuple[str, ...] = ()  # product ids (known_affected, first_affected, last_affected)
    fixed: tuple[str, ...] = ()
    remediations: tuple[Remediation, ...] = ()
    threats: tuple[tuple[str, str], ...] = ()  # (category, details)
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Advisory:
    id: str
    title: str
    publisher: str | None
    initial_release: str | None
    current_release: str | None
    revision: str | None
    products: tuple[AffectedProduct, ...]
    vulns: tuple[AdvisoryVuln, ...]
    summary: str = ""
    notes: tuple[tuple[str, str], ...] = ()  # (title, text) of the notes worth reading
    source: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def cves(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v.cve for v in self.vulns if v.cve))

    def product(self, product_id: str) -> AffectedProduct | None:
        return next((p for p in self.products if p.product_id == product_id), None)


# Notes CISA (and others) repeat in every advisory: of no use to an analyst, nor to NLP.
_BOILERPLATE = re.compile(
    r"legal|disclaimer|recommended practices|critical infrastructure|countries|headquarters|"
    r"affected status for end-users|update summary",
    re.IGNORECASE,
)
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")
_KEY_WORDS = re.compile(
    r"exploit|remote|attacker|unauthori[sz]ed|authenticat|patient|therapy|credential|"
    r"denial|execute|arbitrary|update|patch|upgrade|firmware|vulnerab|successful",
    re.IGNORECASE,
)


def useful_notes(notes: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Drop the template notes (legal notice, recommended practices, sectors, ...)."""
    return tuple((t, x) for t, x in notes if not _BOILERPLATE.search(t) and x.strip())


def split_sentences(text: str) -> list[str]:
    flat = re.sub(r"(?<=[a-z0-9)]\.)(?=[A-Z])", " ", re.sub(r"\s+", " ", text))
    return [s.strip() for s in _SENT.split(flat) if s.strip()]


_CVE_ASSIGNED = re.compile(r"CVE-\d{4}-\d+ has been assigned", re.IGNORECASE)


def extractive_summary(adv: Advisory, max_sentences: int = 3) -> str:
    """A short extractive summary: the risk-evaluation / summary notes first, then the vulnerability
    descriptions, scored by words that matter to an analyst; sentences keep their original order."""
    texts: list[tuple[int, str]] = []
    for title, text in adv.notes:
        prio = 2 if re.search(r"risk|summary|overview", title, re.I) else 0
        texts += [(prio, s) for s in split_sentences(text)]
    for v in adv.vulns:
        if v.description:
            texts += [(1, s) for s in split_sentences(v.description)]
    if not texts:
        return adv.title
    seen: set[str] = set()
    scored = []
    for i, (prio, s) in enumerate(texts):
        key = s.lower()[:60]
        if key in seen or not 25 <= len(s) <= 350 or _CVE_ASSIGNED.search(s):
            continue
        seen.add(key)
        score = prio + len(_KEY_WORDS.findall(s)) - len(s) / 400
        scored.append((score, i, s))
    best = sorted(sorted(scored, reverse=True)[:max_sentences], key=lambda t: t[1])
    return " ".join(s for _score, _i, s in best)
