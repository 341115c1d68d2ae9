"""Read asset inventories and scanner output (CSV / JSON) into assets, exposure profiles and CVEs."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from healthsec.analyze.inventory import (
    asset_key,
    column_key,
    infer_criticality,
    map_columns,
    overlay,
    overlay_profile,
    parse_bool,
    parse_criticality,
    valid_ip,
    valid_mac,
)
from healthsec.model import Asset
from healthsec.model.assets import AssetProfile
from healthsec.model.vulns import Vulnerability, VulnError

_ASSET_FIELDS = (
    "name",
    "ip",
    "mac",
    "role",
    "zone",
    "owner",
    "criticality",
    "device_type",
    "vendor",
    "product",
    "version",
    "cpe",
    "purl",
)
_PROFILE_FIELDS = ("phi_records", "internet_facing", "phishing_exposed", "vendor_remote")


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem in the file, naming where (file, row) and what."""

    file: str
    row: int | None
    reason: str
    unit: str = "row"  # "record" in JSON files

    def describe(self) -> str:
        return f"{self.file}: {'header' if self.row is None else f'{self.unit} {self.row}'}: {self.reason}"


@dataclass
class InventoryImport:
    """What a file holds once validated; ``errors`` non-empty means nothing may be written."""

    assets: list[Asset] = field(default_factory=list)
    profiles: list[AssetProfile] = field(default_factory=list)
    vulns: list[Vulnerability] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0
    fields: set[str] = field(default_factory=set)
    ignored: list[str] = field(default_factory=list)


def decode(raw: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM (Excel's "Unicode text"), else Windows-1252 as
    spreadsheet exports on Windows often are; a NUL-laden file without BOM is refused."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        if b"\x00" in raw[:4096]:
            raise
        return raw.decode("cp1252", errors="strict")


def _rows(path: Path) -> tuple[list[str], Iterator[tuple[int, Mapping[str, Any]]]]:
    """Columns and (row number, record); CSV rows are numbered as in a spreadsheet (header = row 1)."""
    text = decode(path.read_bytes())
    if path.suffix.lower() in (".json", ".jsonl", ".ndjson") or text.lstrip()[:1] in ("[", "{"):
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            records: Any = [orjson.loads(line) for line in text.splitlines() if line.strip()]
        else:
            records = orjson.loads(text)
        if isinstance(records, dict):
            lists = [v for v in records.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise ValueError('JSON object must hold exactly one list of assets (e.g. {"assets": [...]})')
            records = lists[0]
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ValueError("JSON must be a list of objects, one per asset or finding")
        flat = [(i + 1, row) for i, r in enumerate(records) for row in flatten(r)]
        columns: list[str] = []
        seen: set[str] = set()
        for _, r in flat:
            for k in r:
                if k not in seen:
                    seen.add(k)
                    columns.append(k)
        return columns, iter(flat)
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    columns = [c for c in (reader.fieldnames or []) if c is not None]
    return columns, ((i + 2, r) for i, r in enumerate(reader))


def flatten(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One JSON asset record as flat rows: nested objects give their leaf fields (prefixed only on a
    clash), a list of objects (e.g. ``"vulnerabilities": [...]``) gives one row per item with the
    parent's fields, and a list of plain values is joined with commas."""
    base: dict[str, Any] = {}
    children: list[list[dict[str, Any]]] = []

    def put(key: str, value: Any, prefix: str) -> None:
        name = key if key not in base else f"{prefix}{key}"
        base[name] = value

    def walk(obj: Mapping[str, Any], prefix: str) -> None:
        for k, v in obj.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k} ")
            elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                children.append([row for x in v for row in flatten(x)])
            elif isinstance(v, list):
                put(k, ", ".join(str(x) for x in v), prefix)
            else:
                put(k, v, prefix)

    walk(record, "")
    rows = [base]
    for group in children:
        rows = [{**r, **c} for r in rows for c in group]
    return rows


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _guarded(
    rows: Iterator[tuple[int, Mapping[str, Any]]], out: InventoryImport, fname: str, unit: str
) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """Rows until the file turns unreadable (e.g. a CSV field over the csv module's size limit)."""
    while True:
        try:
            item = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            out.errors.append(RowError(fname, out.rows + 2, unit=unit, reason=f"unreadable CSV: {exc}"))
            return
        yield item


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    s = str(value).strip()
    return s or None


def read_inventory(
    path: Path,
    *,
    column_map: Mapping[str, str] | None = None,
    ignore: tuple[str, ...] = (),
    source: str = "inventory",
) -> InventoryImport:
    """Validate a whole inventory / scanner file; collect every problem with its row; build nothing twice."""
    out = InventoryImport()
    fname = path.name
    try:
        columns, rows = _rows(path)
        unit = "row" if isinstance(rows, Generator) else "record"
    except (OSError, UnicodeDecodeError, ValueError, orjson.JSONDecodeError) as exc:
        out.errors.append(RowError(fname, None, f"cannot read: {exc}"))
        return out
    mapping, problems = map_columns(columns, column_map, ignore)
    skipped = {column_key(c) for c in ignore}
    out.ignored = [c for c in columns if c not in mapping and column_key(c) not in skipped]
    out.errors.extend(RowError(fname, None, p) for p in problems)
    if out.errors:
        return out
    fields = set(mapping.values())
    out.fields = fields
    if not fields & {"id", "name", "ip"}:
        out.errors.append(
            RowError(fname, None, "no column identifies the asset (need id, name/hostname or ip)")
        )
        return out

    assets: dict[str, tuple[int, Asset]] = {}
    profiles: dict[str, AssetProfile] = {}
    ip_owner: dict[str, tuple[int, str]] = {}
    vuln_rows: dict[tuple[str, str], int] = {}
    for rownum, record in _guarded(rows, out, fname, unit):
        out.rows += 1
        if record.get(None):  # type: ignore[call-overload]  # csv.DictReader puts surplus values under None
            out.errors.append(RowError(fname, rownum, unit=unit, reason="more values than columns"))
            continue
        val = {f: _text(record.get(col)) for col, f in mapping.items()}
        bad = next((f for f, v in val.items() if v is not None and _CONTROL.search(v)), None)
        if bad is not None:
            out.errors.append(RowError(fname, rownum, unit=unit, reason=f"control character in {bad}"))
            continue
        try:
            asset, profile, found = _row(val, source)
        except (ValueError, VulnError) as exc:
            out.errors.append(RowError(fname, rownum, unit=unit, reason=str(exc)))
            continue
        prev = assets.get(asset.id)
        if prev is not None:
            first_row, first = prev
            if not found:
                out.errors.append(
                    RowError(
                        fname,
                        rownum,
                        unit=unit,
                        reason=f"duplicate asset {asset.id!r} (first at {unit} {first_row})",
                    )
                )
                continue
            if _asset_fields(first) != _asset_fields(asset):
                out.errors.append(
                    RowError(
                        fname,
                        rownum,
                        unit=unit,
                        reason=f"asset {asset.id!r} differs from its {unit} {first_row}: "
                        f"{_diff(first, asset)}",
                    )
                )
                continue
        else:
            if asset.ip is not None and asset.ip in ip_owner and ip_owner[asset.ip][1] != asset.id:
                other_row, other = ip_owner[asset.ip]
                out.errors.append(
                    RowError(
                        fname,
                        rownum,
                        unit=unit,
                        reason=f"duplicate IP {asset.ip} (asset {other!r} at {unit} {other_row})",
                    )
                )
                continue
            assets[asset.id] = (rownum, asset)
            profiles[asset.id] = profile
            if asset.ip is not None:
                ip_owner[asset.ip] = (rownum, asset.id)
        for vuln in found:
            key = (asset.id, vuln.cve)
            if key in vuln_rows:
                out.errors.append(
                    RowError(
                        fname,
                        rownum,
                        unit=unit,
                        reason=f"duplicate finding {vuln.cve} on {asset.id!r} "
                        f"(first at {unit} {vuln_rows[key]})",
                    )
                )
                continue
            vuln_rows[key] = rownum
            out.vulns.append(vuln)
    if out.rows == 0:
        out.errors.append(RowError(fname, None, "file has no rows"))
    out.assets = [a for _, a in assets.values()]
    out.profiles = list(profiles.values())
    return out


def overlay_existing(
    res: InventoryImport, existing: list[Asset], existing_profiles: list[AssetProfile]
) -> InventoryImport:
    """Merge with what is stored: assets already known keep the fields this file does not have."""
    known = {a.id: a for a in existing}
    known_p = {p.asset_id: p for p in existing_profiles}
    assets = [overlay(known[a.id], a, res.fields) if a.id in known else a for a in res.assets]
    profiles = [
        overlay_profile(known_p[p.asset_id], p, res.fields) if p.asset_id in known_p else p
        for p in res.profiles
    ]
    return InventoryImport(assets, profiles, res.vulns, res.errors, res.rows, res.fields, res.ignored)


def _flag(text: str | None) -> bool | None:
    return parse_bool(text) if text else None


def _asset_fields(a: Asset) -> tuple[object, ...]:
    return tuple(getattr(a, f) for f in _ASSET_FIELDS)


def _diff(a: Asset, b: Asset) -> str:
    return ", ".join(
        f"{f} {getattr(a, f)!r} vs {getattr(b, f)!r}" for f in _ASSET_FIELDS if getattr(a, f) != getattr(b, f)
    )


def _row(val: Mapping[str, str | None], source: str) -> tuple[Asset, AssetProfile, list[Vulnerability]]:
    ip = valid_ip(ip_text) if (ip_text := val.get("ip")) else None
    name = val.get("name") or ip or val.get("id")
    if not name:
        raise ValueError("asset has no id, name or IP")
    aid = asset_key(val.get("name"), ip, val.get("id"))
    role = val.get("role") or val.get("device_type") or "unknown"
    if val.get("criticality"):
        crit = parse_criticality(str(val["criticality"]))
        why = f"given as {val['criticality']!r}"
    else:
        crit, why = infer_criticality(role, val.get("device_type"), name, val.get("product"))
    asset = Asset(
        id=aid,
        name=name,
        role=role,
        zone=val.get("zone") or "unknown",
        ip=ip,
        mac=valid_mac(mac) if (mac := val.get("mac")) else None,
        owner=val.get("owner"),
        criticality=crit,
        device_type=val.get("device_type"),
        vendor=val.get("vendor"),
        product=val.get("product"),
        version=val.get("version"),
        cpe=val.get("cpe"),
        purl=val.get("purl"),
    )
    phi = val.get("phi_records")
    phi_n: int | None = None
    if phi is not None:
        try:
            phi_n = int(float(phi.replace(",", "").replace("_", "")))
        except ValueError:
            raise ValueError(f"phi_records is not a number: {phi!r}") from None
        if phi_n < 0:
            raise ValueError(f"phi_records is negative: {phi_n}")
    profile = AssetProfile(
        asset_id=aid,
        phi_records=phi_n,
        internet_facing=_flag(val.get("internet_facing")),
        phishing_exposed=_flag(val.get("phishing_exposed")),
        vendor_remote=_flag(val.get("vendor_remote")),
        criticality_reason=why,
    )
    vulns: list[Vulnerability] = []
    if val.get("cve"):
        score = val.get("cvss_score")
        try:
            score_f = float(score) if score else None
        except ValueError:
            raise VulnError(f"CVSS score is not a number: {score!r}") from None
        # scanners often list several CVEs of one finding in one cell
        for cve in dict.fromkeys(c for c in re.split(r"[,;\s]+", str(val["cve"])) if c):
            vulns.append(
                Vulnerability.create(
                    aid,
                    cve,
                    val.get("cvss"),
                    known_exploited=_flag(val.get("known_exploited")),
                    title=val.get("vuln_title"),
                    source=source,
                    base_score=score_f,
                )
            )
    elif val.get("cvss") or val.get("known_exploited"):
        raise VulnError("CVSS vector or exploited flag given without a CVE id")
    return asset, profile, vulns


def read_kev(path: Path) -> tuple[set[str], list[RowError]]:
    """CVE ids from a known-exploited catalogue: CISA KEV JSON (``vulnerabilities[].cveID``), a JSON
    list of ids or objects, or a CSV with a ``cveID`` / ``cve`` column. Bad ids are named by record."""
    from healthsec.model.vulns import normalise_cve

    fname = path.name
    errors: list[RowError] = []
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return set(), [RowError(fname, None, f"cannot read: {exc}")]
    items: list[tuple[int, Any]] = []
    if text.lstrip()[:1] in ("[", "{"):
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            return set(), [RowError(fname, None, f"not valid JSON: {exc}")]
        records = doc.get("vulnerabilities") if isinstance(doc, dict) else doc
        if not isinstance(records, list):
            return set(), [RowError(fname, None, "no 'vulnerabilities' list")]
        for i, r in enumerate(records, 1):
            items.append((i, r.get("cveID") or r.get("cve") if isinstance(r, dict) else r))
    else:
        reader = csv.DictReader(io.StringIO(text))
        col = next((c for c in reader.fieldnames or [] if column_key(c) in ("cveid", "cve")), None)
        if col is None:
            return set(), [RowError(fname, None, "no cveID column")]
        items = [(i + 2, r.get(col)) for i, r in enumerate(reader)]
    cves: set[str] = set()
    for n, value in items:
        try:
            cves.add(normalise_cve(str(value or "")))
        except VulnError as exc:
            errors.append(RowError(fname, n, str(exc)))
    return cves, errors
