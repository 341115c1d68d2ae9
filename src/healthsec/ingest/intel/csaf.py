"""Read CSAF 2.0 advisories: validate against the OASIS JSON schema, then build typed advisories.

The schema files come from the ``csaf`` PyPI package (MIT; it ships the OASIS CSAF 2.0 schema under
the OASIS IPR policy and FIRST's CVSS schemas under their BSD-style licence), validated with
``jsonschema``. A document that fails is refused with the JSON path and the rule it breaks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from healthsec.analyze.advisories import Advisory as Advisory
from healthsec.analyze.advisories import (
    AdvisoryVuln,
    AffectedProduct,
    Remediation,
    extractive_summary,
    useful_notes,
)

MAX_BYTES = 20 * 1024 * 1024


class CsafError(ValueError):
    """A CSAF document refused: ``source`` names the file or URL, ``reason`` says why."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


@cache
def _validator() -> Any:
    """The CSAF 2.0 schema validator (draft 2020-12) with FIRST's CVSS schemas registered by URL."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4, DRAFT7

    base = resources.files("csaf").joinpath("csaf", "v20", "schema")
    schema = json.loads(base.joinpath("csaf.json").read_text(encoding="utf-8"))
    ref = base.joinpath("referenced")
    registry: Registry[Any] = Registry()
    for name, spec in (("cvss-v2.0", DRAFT4), ("cvss-v3.0", DRAFT4), ("cvss-v3.1", DRAFT7)):
        doc = json.loads(ref.joinpath(f"{name}.json").read_text(encoding="utf-8"))
        registry = registry.with_resource(
            f"https://www.first.org/cvss/{name}.json", Resource.from_contents(doc, default_specification=spec)
        )
    return Draft202012Validator(schema, registry=registry)


def schema_errors(doc: Any, limit: int = 3) -> list[str]:
    """Schema violations of ``doc`` as ``$.json.path: message`` (the deepest, most specific first)."""
    from jsonschema.exceptions import best_match

    errors = list(_validator().iter_errors(doc))
    if not errors:
        return []
    first = best_match(errors)
    out = [f"{first.json_path}: {first.message[:300]} (rule {first.validator!r})"]
    for e in errors:
        line = f"{e.json_path}: {e.message[:300]} (rule {e.validator!r})"
        if line not in out and len(out) < limit:
            out.append(line)
    return out


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _products(tree: Mapping[str, Any]) -> list[AffectedProduct]:
    out: list[AffectedProduct] = []

    def walk(branches: Any, ctx: dict[str, str]) -> None:
        for b in branches or []:
            cat, name = b.get("category"), _text(b.get("name"))
            here = dict(ctx)
            if cat in (
                "vendor",
                "product_family",
                "product_name",
                "product_version",
                "product_version_range",
            ):
                if cat == "product_family" and "family" in here and name:
                    here["family"] = f"{here['family']} / {name}"
                elif name:
                    here[
                        {"vendor": "vendor", "product_family": "family", "product_name": "product"}.get(
                            cat, "version"
                        )
                    ] = name
                if cat == "product_version_range":
                    here["range"] = "1"
            if "product" in b:
                out.append(_leaf(b["product"], here))
            walk(b.get("branches"), here)

    walk(tree.get("branches"), {})
    for fp in tree.get("full_product_names") or []:
        out.append(_leaf(fp, {}))
    return out


def _leaf(p: Mapping[str, Any], ctx: Mapping[str, str]) -> AffectedProduct:
    helper = p.get("product_identification_helper") or {}
    return AffectedProduct(
        product_id=str(p.get("product_id")),
        vendor=ctx.get("vendor"),
        family=ctx.get("family"),
        product=ctx.get("product") or ctx.get("family") or _text(p.get("name")),
        version=ctx.get("version"),
        version_is_range="range" in ctx,
        full_name=_text(p.get("name")),
        cpe=_text(helper.get("cpe")),
        purl=_text(helper.get("purl")),
    )


def _scores(v: Mapping[str, Any]) -> tuple[str | None, float | None, tuple[str, ...]]:
    vectors: list[tuple[str, float | None]] = []
    for s in v.get("scores") or []:
        for key in ("cvss_v4", "cvss_v3"):
            c = s.get(key)
            if isinstance(c, dict) and _text(c.get("vectorString")):
                score = c.get("baseScore")
                vectors.append((c["vectorString"].strip(), float(score) if score is not None else None))
    # v4 before v3.1 before v3.0; within a version the highest score
    vectors.sort(key=lambda t: (t[0][:8], t[1] or 0.0), reverse=True)
    best = vectors[0] if vectors else (None, None)
    return best[0], best[1], tuple(dict.fromkeys(vv for vv, _ in vectors))


def _vuln(v: Mapping[str, Any]) -> AdvisoryVuln:
    status = v.get("product_status") or {}
    affected = [
        pid for key in ("known_affected", "first_affected", "last_affected") for pid in status.get(key) or []
    ]
    fixed = [pid for key in ("fixed", "first_fixed") for pid in status.get(key) or []]
    vector, score, vectors = _scores(v)
    notes = [n for n in v.get("notes") or [] if n.get("category") in ("description", "summary", "details")]
    cwe = v.get("cwe") or {}
    return AdvisoryVuln(
        cve=_text(v.get("cve")),
        title=_text(v.get("title")),
        cwe=_text(cwe.get("id")) if isinstance(cwe, dict) else None,
        cvss_vector=vector,
        base_score=score,
        cvss_vectors=vectors,
        affected=tuple(dict.fromkeys(affected)),
        fixed=tuple(dict.fromkeys(fixed)),
        remediations=tuple(
            Remediation(
                category=str(r.get("category")),
                details=str(r.get("details", "")).strip(),
                product_ids=tuple(r.get("product_ids") or ()),
                url=_text(r.get("url")),
            )
            for r in v.get("remediations") or []
        ),
        threats=tuple(
            (str(t.get("category")), str(t.get("details", "")).strip()) for t in v.get("threats") or []
        ),
        description=" ".join(str(n.get("text", "")).strip() for n in notes) or None,
    )


def advisory_from_doc(doc: Mapping[str, Any], source: str | None = None) -> Advisory:
    """A schema-valid CSAF document as an :class:`Advisory` (no validation here: see :func:`parse_csaf`)."""
    d = doc["document"]
    tracking = d.get("tracking") or {}
    notes = [(str(n.get("title") or n.get("category")), str(n.get("text", ""))) for n in d.get("notes") or []]
    adv = Advisory(
        id=str(tracking.get("id")),
        title=str(d.get("title")),
        publisher=_text((d.get("publisher") or {}).get("name")),
        initial_release=_text(tracking.get("initial_release_date")),
        current_release=_text(tracking.get("current_release_date")),
        revision=_text(tracking.get("version")),
        products=tuple(_products(doc.get("product_tree") or {})),
        vulns=tuple(_vuln(v) for v in doc.get("vulnerabilities") or []),
        notes=useful_notes(notes),
        source=source,
    )
    return Advisory(**{**_fields(adv), "summary": extractive_summary(adv)})


def _fields(adv: Advisory) -> dict[str, Any]:
    return {f: getattr(adv, f) for f in adv.__dataclass_fields__}


def parse_csaf(raw: bytes, source: str) -> Advisory:
    """Check and read one CSAF 2.0 document; raise :class:`CsafError` naming the source and the reason."""
    if len(raw) > MAX_BYTES:
        raise CsafError(source, f"larger than {MAX_BYTES} bytes")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CsafError(source, f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("document"), dict):
        raise CsafError(source, "not a CSAF document (no top-level 'document' object)")
    version = doc["document"].get("csaf_version")
    if version != "2.0":
        raise CsafError(source, f"csaf_version {version!r}: only CSAF 2.0 is supported")
    problems = schema_errors(doc)
    if problems:
        raise CsafError(source, "fails the CSAF 2.0 schema: " + "; ".join(problems))
    return advisory_from_doc(doc, source)


@dataclass(frozen=True, slots=True)
class CsafBatch:
    advisories: list[Advisory]
    errors: list[CsafError]


def csaf_files(path: Path) -> Iterator[Path]:
    """A file, or every ``*.json`` under a directory (sorted; provider metadata and ROLIE feeds skipped)."""
    if path.is_dir():
        for p in sorted(path.rglob("*.json")):
            if p.name not in ("provider-metadata.json", "aggregator.json") and not p.name.endswith(
                "-feed.json"
            ):
                yield p
    else:
        yield path


def read_csaf_paths(paths: list[Path]) -> CsafBatch:
    """Read every document; the bad ones are listed with the reason, the good ones are all kept."""
    advisories: list[Advisory] = []
    errors: list[CsafError] = []
    for root in paths:
        if not root.exists():
            errors.append(CsafError(str(root), "no such file or directory"))
            continue
        for f in csaf_files(root):
            try:
                advisories.append(parse_csaf(f.read_bytes(), str(f)))
            except CsafError as exc:
                errors.append(exc)
            except OSError as exc:
                errors.append(CsafError(str(f), f"cannot read ({exc.strerror})"))
    return CsafBatch(advisories, errors)
