"""Match advisories' affected products to inventory assets: CPE/PURL when both sides have one, else
normalised vendor (aliases + fuzzy) + product + version range, each match with a confidence and reasons.

Vendor and product normalisation is hand-written (stdlib ``difflib`` for the fuzzy part): no maintained
library knows medical-device vendor names, and the rules are short enough to read in one screen.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher

from healthsec.analyze.advisories import Advisory, AffectedProduct
from healthsec.analyze.versions import looks_like_version, parse_version_spec
from healthsec.model import Asset

MIN_CONFIDENCE = 0.5
FUZZY_VENDOR = 0.85
ONE_WORD = 0.6  # weight of a single shared word when both names have several

# Spelling variants and former / parent names seen in advisories and inventories -> one canonical name.
VENDOR_ALIASES: dict[str, str] = {
    "phillips": "philips",
    "philips healthcare": "philips",
    "philips medical systems": "philips",
    "ge": "ge healthcare",
    "general electric": "ge healthcare",
    "general electric ge": "ge healthcare",
    "gehc": "ge healthcare",
    "bd": "becton dickinson",
    "becton dickinson and company": "becton dickinson",
    "becton dickinson and company bd": "becton dickinson",
    "carefusion": "becton dickinson",
    "b braun melsungen": "b braun",
    "b braun medical": "b braun",
    "braun": "b braun",
    "baxter international": "baxter",
    # Hillrom (and its Welch Allyn brand) belongs to Baxter since 2021; advisories use either name
    "hillrom": "baxter",
    "hill rom": "baxter",
    "welch allyn": "baxter",
    "abbott laboratories": "abbott",
    "st jude medical": "abbott",
    "siemens healthineers": "siemens",
    "siemens healthcare": "siemens",
    "drager": "draeger",
    "draegerwerk": "draeger",
    "natus medical": "natus",
    "roche diagnostics": "roche",
    "smiths medical": "smiths medical",
    "icu medical": "icu medical",
    "fujifilm healthcare": "fujifilm",
    "medtronic minimed": "medtronic",
}
_SUFFIXES = re.compile(
    r"\b(inc|incorporated|llc|ltd|limited|co|corp|corporation|company|gmbh|ag|sa|s a|plc|oy|nv|bv|"
    r"international|technologies|technology|systems)\b"
)
_STOP = frozenset(
    {
        "software",
        "firmware",
        "version",
        "versions",
        "the",
        "system",
        "systems",
        "device",
        "devices",
        "all",
        "and",
        "for",
        "with",
        "of",
        "series",
        "model",
        "models",
        "products",
        "product",
        "application",
        "suite",
    }
)


def _fold(text: str) -> str:
    t = unicodedata.normalize("NFKD", text)
    t = t.encode("ascii", "ignore").decode()
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9]+", " ", t.lower())).strip()


def normalise_vendor(name: str | None) -> str:
    """``"Becton, Dickinson and Company (BD)"`` -> ``"becton dickinson"``; ``"Phillips"`` -> ``"philips"``."""
    if not name:
        return ""
    folded = _fold(name.replace("Ã¤", "a"))  # a mis-decoded "ä" seen in one CISA advisory
    if folded in VENDOR_ALIASES:
        return VENDOR_ALIASES[folded]
    base = _fold(re.sub(r"\([^)]*\)", " ", name))
    base = _SUFFIXES.sub(" ", base)
    base = re.sub(r"\s+", " ", base).strip()
    return VENDOR_ALIASES.get(base, base)


def vendor_names(name: str | None) -> list[str]:
    """Every vendor a CSAF vendor branch names ("Silex Technology and GE Healthcare" names two; the
    parenthesis in "General Electric (GE)" is an alias of the same one)."""
    if not name:
        return []
    out = [normalise_vendor(name)]
    for paren in re.findall(r"\(([^)]+)\)", name):
        out.append(normalise_vendor(paren))
    for part in re.split(r",| and | & |/", re.sub(r"\([^)]*\)", " ", name)):
        if part.strip() and len(_fold(part)) > 1:
            out.append(normalise_vendor(part))
    return [v for v in dict.fromkeys(out) if v]


_GENERIC = frozenset({"medical", "health", "healthcare", "diagnostics", "life", "technologies", "solutions"})


def _subset(a: str, b: str) -> bool:
    """``contec`` and ``contec health``: one name is the other plus generic words."""
    ta, tb = set(a.split()), set(b.split())
    small, big = (ta, tb) if len(ta) <= len(tb) else (tb, ta)
    return bool(small) and small < big and not (big - small - _GENERIC) and any(len(t) >= 4 for t in small)


def vendor_similarity(asset_vendor: str | None, advisory_vendor: str | None) -> tuple[float, str]:
    a = normalise_vendor(asset_vendor)
    if not a:
        return 0.0, "asset has no vendor"
    best, why = 0.0, f"vendor {asset_vendor!r} differs from {advisory_vendor!r}"
    for v in vendor_names(advisory_vendor):
        if a == v:
            exact = _fold(asset_vendor or "") == _fold(advisory_vendor or "")
            return 1.0, (
                f"vendor {asset_vendor!r} = {advisory_vendor!r}"
                if exact
                else f"vendor {asset_vendor!r} ~ {advisory_vendor!r} (both normalise to {v!r})"
            )
        if _subset(a, v) and best < 0.9:
            best, why = 0.9, f"vendor {asset_vendor!r} ~ {advisory_vendor!r} (same name but generic words)"
            continue
        r = SequenceMatcher(None, a, v).ratio()
        if r >= FUZZY_VENDOR and r > best:
            best, why = r, f"vendor {asset_vendor!r} ~ {advisory_vendor!r} (fuzzy {r:.2f})"
    return best, why


def _tokens(text: str | None) -> set[str]:
    return {t for t in _fold(text or "").split() if t not in _STOP}


def _modelish(tokens: set[str]) -> set[str]:
    """Tokens that name a model (letters and digits: ``mx800``, ``8015``, ``pcx``) rather than a word."""
    return {t for t in tokens if re.search(r"\d", t)}


def product_similarity(
    asset_product: str | None, p: AffectedProduct, asset_vendor: str | None = None
) -> tuple[float, str]:
    """Share of the shorter name's words found in the other (vendor words left out: "Baxter Spectrum" is
    "Spectrum"); model numbers must agree when both have one; one shared word of several counts less
    ("CARESCAPE B450" is not "CARESCAPE Telemetry Server")."""
    vendor_words = _tokens(asset_vendor) | _tokens(p.vendor) | set(" ".join(vendor_names(p.vendor)).split())
    a = _tokens(asset_product) - vendor_words or _tokens(asset_product)
    if not a:
        return 0.0, "asset has no product name"
    names = [n for n in (p.product, p.family, p.full_name) if n]
    if p.version and not looks_like_version(p.version.split()[0]):
        names.append(f"{p.product or ''} {p.version}")  # "product_version" holding a model name
    best, why = 0.0, f"product {asset_product!r} differs from {p.product!r}"
    for name in names:
        name = re.sub(r":\s*versions?.*$|,?\s*(not including|excluding|except)\b.*$", "", name, flags=re.I)
        b = _tokens(name) - vendor_words or _tokens(name)
        if not b:
            continue
        common = a & b
        am, bm = _modelish(a), _modelish(b)
        if am and bm and not am & bm:
            continue  # "IntelliVue MX800" is not "IntelliVue MX40"
        score = len(common) / min(len(a), len(b))
        if len(common) == 1 and min(len(a), len(b)) >= 2:
            score *= ONE_WORD
        if score > best:
            best, why = (
                score,
                f"product {asset_product!r} ~ {name!r} ({len(common)} of {min(len(a), len(b))} words)",
            )
    return best, why


_NAME_VERSION = re.compile(r"\s(v?\d+(?:\.(?:\d+|x))+)$", re.IGNORECASE)


def _cpe_parts(cpe: str) -> tuple[str, str, str] | None:
    parts = cpe.split(":")
    if cpe.startswith("cpe:2.3:") and len(parts) >= 6:
        return parts[3].lower(), parts[4].lower(), parts[5].lower()
    if cpe.startswith("cpe:/") and len(parts) >= 4:
        return parts[2].lower(), parts[3].lower(), (parts[4].lower() if len(parts) > 4 else "*")
    return None


def _purl_parts(purl: str) -> tuple[str, str]:
    base = purl.split("?")[0].split("#")[0]
    name, _, version = base.partition("@")
    return name.lower(), version


@dataclass(frozen=True, slots=True)
class AdvisoryMatch:
    """An asset an advisory's product concerns: how sure (0..1), by which method, and why."""

    asset_id: str
    advisory_id: str
    product_id: str
    cves: tuple[str, ...]
    confidence: float
    method: str  # "cpe" | "purl" | "fuzzy"
    reasons: tuple[str, ...]
    product: str


def _identifier_match(asset: Asset, p: AffectedProduct) -> tuple[bool, str, str] | None:
    """Exact identifier match, or None when the two sides do not both carry a CPE / PURL."""
    if asset.cpe and p.cpe:
        a, b = _cpe_parts(asset.cpe), _cpe_parts(p.cpe)
        if a and b:
            same = a[:2] == b[:2] and (b[2] in ("*", "-", a[2]))
            return same, "cpe", f"CPE {asset.cpe} {'matches' if same else 'differs from'} {p.cpe}"
    if asset.purl and p.purl:
        (an, av), (bn, bv) = _purl_parts(asset.purl), _purl_parts(p.purl)
        same = an == bn and (not bv or av == bv)
        return same, "purl", f"PURL {asset.purl} {'matches' if same else 'differs from'} {p.purl}"
    return None


def match_product(asset: Asset, p: AffectedProduct) -> tuple[float, str, list[str]]:
    """Confidence (0..1) that ``p`` is ``asset``, the method, and the reasons in words."""
    ident = _identifier_match(asset, p)
    if ident is not None:
        same, method, why = ident
        return (1.0 if same else 0.0), method, [why]
    v_score, v_why = vendor_similarity(asset.vendor, p.vendor)
    if v_score == 0.0:
        return 0.0, "fuzzy", [v_why]
    p_score, p_why = product_similarity(asset.product or asset.device_type, p, asset.vendor)
    if p_score < 0.5:
        return 0.0, "fuzzy", [v_why, p_why]
    text = (p.version or "").strip()
    readable = (
        p.version_is_range or looks_like_version(text.lstrip("<>=! ")) or text.lower().startswith("vers:")
    )
    # a product_version that is not a version ("CoaguChek XS Plus") says nothing about versions
    spec = parse_version_spec(text if text and readable else "")
    tail = _NAME_VERSION.search(p.product or "")
    if spec.kind != "versions" and tail:  # "IntelliSpace Portal 8.0.x": the version sits in the name
        spec = parse_version_spec(tail.group(1))
    hit, ver_why = spec.contains(asset.version)
    if hit is False:
        return 0.0, "fuzzy", [v_why, p_why, ver_why]
    version_factor = 1.0 if hit else (0.6 if spec.kind == "unknown" else 0.7)
    if hit is None and spec.kind == "unknown":
        ver_why += "; low confidence"
    conf = round(v_score * p_score * version_factor, 3)
    return conf, "fuzzy", [v_why, p_why, ver_why]


def match_advisories(
    advisories: Iterable[Advisory], assets: Iterable[Asset], min_confidence: float = MIN_CONFIDENCE
) -> list[AdvisoryMatch]:
    """Every (asset, advisory product) pair at or above ``min_confidence``; the best product per
    (asset, advisory) only, so one asset is not counted once per version line of one advisory."""
    assets = [a for a in assets if a.vendor or a.cpe or a.purl]
    best: dict[tuple[str, str], AdvisoryMatch] = {}
    for adv in advisories:
        for p in adv.products:
            cves = tuple(dict.fromkeys(v.cve for v in adv.vulns if v.cve and p.product_id in v.affected))
            for asset in assets:
                conf, method, reasons = match_product(asset, p)
                if conf < min_confidence:
                    continue
                key = (asset.id, adv.id)
                m = AdvisoryMatch(
                    asset.id, adv.id, p.product_id, cves, conf, method, tuple(reasons), p.full_name or ""
                )
                if key not in best or conf > best[key].confidence:
                    best[key] = m
    return sorted(best.values(), key=lambda m: (-m.confidence, m.asset_id, m.advisory_id))


def naive_vendor_matches(advisories: Iterable[Advisory], assets: Iterable[Asset]) -> set[tuple[str, str]]:
    """The baseline a spreadsheet gives: every asset whose vendor string equals an advisory vendor."""
    out: set[tuple[str, str]] = set()
    assets = list(assets)
    for adv in advisories:
        vendors = {(p.vendor or "").strip().lower() for p in adv.products}
        for a in assets:
            if a.vendor and a.vendor.strip().lower() in vendors:
                out.add((a.id, adv.id))
    return out
