"""Asset inventory logic: column mapping, clinical criticality, zones, exposure profiles, enrichment."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace

from healthsec.model import Alert, Asset, Criticality, EntityKind
from healthsec.model.assets import AssetProfile as AssetProfile  # re-exported for older imports

# Canonical inventory fields and the column names (lower-case, separators removed) that mean them.
# Unknown columns are errors, not silently dropped; ``--map COLUMN=FIELD`` and ``--ignore COLUMN`` exist.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "id": (
        "id",
        "assetid",
        "assettag",
        "tag",
        "uid",
        "deviceid",
        "ciid",
        "inventoryid",
        "serial",
        "serialnumber",
    ),
    "name": (
        "name",
        "assetname",
        "hostname",
        "host",
        "devicename",
        "fqdn",
        "dnsname",
        "netbiosname",
        "label",
        "device",
        "equipment",
    ),
    "ip": ("ip", "ipaddress", "ipv4", "ipv4address", "address", "ipaddr", "hostip", "primaryip"),
    "mac": ("mac", "macaddress", "hwaddress", "ethernet"),
    "role": ("role", "function", "assettype", "type", "category", "class", "purpose", "systemtype"),
    "zone": ("zone", "networkzone", "segment", "vlan", "network", "subnet", "location", "securityzone"),
    "owner": ("owner", "department", "businessowner", "responsible", "custodian", "unit", "ward"),
    "criticality": (
        "criticality",
        "clinicalcriticality",
        "criticalityclass",
        "riskclass",
        "tier",
        "priority",
    ),
    "device_type": (
        "devicetype",
        "equipmenttype",
        "devicecategory",
        "modality",
        "os",
    ),
    "vendor": ("vendor", "manufacturer", "make", "supplier"),
    "product": ("product", "productname", "model", "devicemodel", "modelname", "software"),
    "version": (
        "version",
        "firmwareversion",
        "softwareversion",
        "firmware",
        "swversion",
        "fwversion",
        "productversion",
    ),
    "cpe": ("cpe", "cpe23", "cpename", "cpeuri"),
    "purl": ("purl", "packageurl"),
    "phi_records": ("phirecords", "phi", "patientrecords", "records", "phivolume", "patients"),
    "internet_facing": ("internetfacing", "internet", "external", "exposed", "publicfacing", "dmz"),
    "phishing_exposed": ("phishingexposed", "email", "hasemail", "mailuser", "userworkstation"),
    "vendor_remote": ("vendorremote", "remoteaccess", "vendoraccess", "remotesupport", "vpn"),
    "cve": ("cve", "cveid", "vulnerability", "vuln", "cves"),
    "cvss": ("cvss", "cvssvector", "vector", "cvssv3", "cvssv31", "cvssv4", "cvss3vector", "cvss4vector"),
    "cvss_score": ("cvssscore", "basescore", "score", "cvssbasescore", "severityscore"),
    "known_exploited": ("knownexploited", "kev", "exploited", "cisakev", "exploitavailable", "inthewild"),
    "vuln_title": ("title", "plugin", "pluginname", "finding", "vulnname", "vulnerabilityname", "summary"),
}
_ALIAS_TO_FIELD = {alias: f for f, aliases in FIELD_ALIASES.items() for alias in aliases}
# Columns inventories and scanners commonly carry that risk and paths do not use: skipped and listed,
# not errors (a column nobody recognises still is an error).
KNOWN_UNUSED = frozenset(
    {
        "notes",
        "note",
        "comment",
        "comments",
        "description",
        "status",
        "state",
        "lastseen",
        "firstseen",
        "lastscan",
        "scandate",
        "discovered",
        "created",
        "updated",
        "modified",
        "purchasedate",
        "warranty",
        "warrantyend",
        "room",
        "building",
        "floor",
        "site",
        "campus",
        "rack",
        "osversion",
        "build",
        "patchlevel",
        "pluginid",
        "port",
        "protocol",
        "service",
        "risk",
        "severity",
        "synopsis",
        "solution",
        "seealso",
        "pluginoutput",
        "cvssv2",
        "cvssv2basescore",
        "cvssv20basescore",
        "cvssv2vector",
        "cvssv20vector",
        "assetvalue",
        "cost",
        "costcentre",
        "costcenter",
        "contract",
        "tags",
        "domain",
        "workgroup",
        "lastlogon",
        "lastuser",
    }
)


def column_key(column: str) -> str:
    return re.sub(r"[^a-z0-9]", "", column.lower())


def _fuzzy(key: str) -> str | None:
    """The field whose longest alias the column name contains ("Network Segment" -> zone, "CVSS v3.0 Base
    Score" -> cvss_score); None when nothing or a tie. Only aliases of five letters or more count, so
    "ip" never matches inside "description"."""
    hits = sorted(
        ((len(alias), f) for alias, f in _ALIAS_TO_FIELD.items() if len(alias) >= 5 and alias in key),
        reverse=True,
    )
    if not hits:
        return None
    best = {f for n, f in hits if n == hits[0][0]}
    return best.pop() if len(best) == 1 else None


def map_columns(
    columns: Iterable[str], explicit: Mapping[str, str] | None = None, ignore: Iterable[str] = ()
) -> tuple[dict[str, str], list[str]]:
    """Map file columns to canonical fields; return (column -> field, problems).

    When two columns mean one field (e.g. "VLAN" and "Location" both mean zone), the one whose name
    is the stronger alias wins (earlier in :data:`FIELD_ALIASES`; exact before contained; ``--map``
    before either) and the other is left unused, not an error.
    """
    explicit = {column_key(k): v for k, v in (explicit or {}).items()}
    ignored = {column_key(c) for c in ignore}
    problems: list[str] = []
    best: dict[str, tuple[int, str]] = {}
    for col in columns:
        key = column_key(col)
        if key in ignored or (key in KNOWN_UNUSED and key not in explicit):
            continue
        if key in explicit:
            target, rank = explicit[key], -1
        elif key in _ALIAS_TO_FIELD:
            target = _ALIAS_TO_FIELD[key]
            rank = FIELD_ALIASES[target].index(key)
        else:
            fuzzy = _fuzzy(key)
            if fuzzy is None:
                problems.append(
                    f"unknown column {col!r} (map it with --map '{col}=FIELD' or skip it with --ignore)"
                )
                continue
            target, rank = fuzzy, 1000
        if target not in FIELD_ALIASES:
            problems.append(f"column {col!r} is mapped to unknown field {target!r}")
            continue
        if target in best and best[target][0] == rank:
            problems.append(f"columns {best[target][1]!r} and {col!r} both mean {target!r}")
            continue
        if target not in best or rank < best[target][0]:
            best[target] = (rank, col)
    mapping = {col: target for target, (_rank, col) in best.items()}
    return mapping, problems


# ---- clinical criticality ---------------------------------------------------------------------
_CRIT_WORDS: list[tuple[Criticality, re.Pattern[str]]] = [
    (
        Criticality.LIFE_SUSTAINING,
        re.compile(
            r"ventilat|infusion|pump|dialys|anaesth|anesth|ecmo|pacemaker|defibrillat|heart.?lung|"
            r"life.?support|insulin|incubator|respirator|lvad",
            re.I,
        ),
    ),
    (
        Criticality.PATIENT_MONITORING,
        re.compile(
            r"monitor|telemetry|ecg|ekg|oximet|spo2|vital|central.?station|bedside|nurse.?call|cardiac|fetal",
            re.I,
        ),
    ),
    (
        Criticality.CLINICAL_SUPPORT,
        re.compile(
            r"pacs|\bct\b|mri|x.?ray|ultrasound|modality|imaging|radiolog|\blis\b|\bris\b|laborator|lab.?anal|"
            r"ehr|emr|\bhis\b|pharmac|hl7|interface.?engine|dicom|clinical|medication|surgical|theatre",
            re.I,
        ),
    ),
    (
        Criticality.ADMINISTRATIVE,
        re.compile(r"printer|guest|kiosk|signage|camera|badge|vending|tv\b|entertainment|phone", re.I),
    ),
]
_CRIT_NAMES: dict[str, Criticality] = {
    "lifesustaining": Criticality.LIFE_SUSTAINING,
    "lifecritical": Criticality.LIFE_SUSTAINING,
    "lifesupport": Criticality.LIFE_SUSTAINING,
    "critical": Criticality.LIFE_SUSTAINING,
    "patientmonitoring": Criticality.PATIENT_MONITORING,
    "monitoring": Criticality.PATIENT_MONITORING,
    "high": Criticality.PATIENT_MONITORING,
    "clinicalsupport": Criticality.CLINICAL_SUPPORT,
    "clinical": Criticality.CLINICAL_SUPPORT,
    "medium": Criticality.CLINICAL_SUPPORT,
    "business": Criticality.BUSINESS,
    "low": Criticality.BUSINESS,
    "administrative": Criticality.ADMINISTRATIVE,
    "admin": Criticality.ADMINISTRATIVE,
    "minimal": Criticality.ADMINISTRATIVE,
}


def parse_criticality(text: str) -> Criticality:
    """A criticality from a class name (life_sustaining, patient monitoring, high, ...) or 1..5."""
    key = column_key(text)
    if key.isdigit() and 1 <= int(key) <= 5:
        return Criticality(int(key))
    if key in _CRIT_NAMES:
        return _CRIT_NAMES[key]
    raise ValueError(
        f"unknown criticality {text!r} (use 1-5 or one of: {', '.join(c.name.lower() for c in Criticality)})"
    )


def infer_criticality(*texts: str | None) -> tuple[Criticality, str]:
    """Clinical criticality from role / device type / name words; life-sustaining devices rank highest."""
    joined = " ".join(t for t in texts if t)
    for crit, pattern in _CRIT_WORDS:
        m = pattern.search(joined)
        if m:
            return crit, f"inferred from {m.group(0)!r}"
    return Criticality.BUSINESS, "no clinical keyword: business by default"


# ---- zones ------------------------------------------------------------------------------------
ZONES = (
    "internet",
    "dmz",
    "corporate",
    "servers",
    "clinical",
    "medical-devices",
    "building",
    "guest",
    "vendor",
)
_ZONE_WORDS: list[tuple[str, re.Pattern[str]]] = [
    ("medical-devices", re.compile(r"iomt|biomed|medical.?dev|device|modalit|imaging|icu|monitor", re.I)),
    ("building", re.compile(r"\bot\b|bms|building|hvac|facilit|scada|ics", re.I)),
    ("guest", re.compile(r"guest|public.?wifi|visitor|patient.?wifi", re.I)),
    ("dmz", re.compile(r"dmz|perimeter|edge", re.I)),
    ("vendor", re.compile(r"vendor|third.?party|supplier|partner", re.I)),
    ("servers", re.compile(r"server|data.?cent|\bdc\b|core|backend|infra|\behr\b|\bemr\b", re.I)),
    ("clinical", re.compile(r"clinic|ward|nurs|lab|pharm|radiol|theatre|surg|emergenc|\bed\b", re.I)),
    ("corporate", re.compile(r"corp|office|admin|\bit\b|user|staff|enterprise|business|finance", re.I)),
    ("internet", re.compile(r"internet|external|wan|cloud", re.I)),
]


def canonical_zone(zone: str) -> str:
    """Map a site's zone name (VLAN names, segments) to one of :data:`ZONES`; unknown names are kept."""
    z = zone.strip().lower()
    if z in ZONES:
        return z
    for name, pattern in _ZONE_WORDS:
        if pattern.search(z):
            return name
    return z


# ---- exposure profile (what the Asset model does not hold) --------------------------------------
_REMOTE = re.compile(r"vpn|remote.?access|jump", re.IGNORECASE)


_TRUE = {"1", "true", "yes", "y", "x", "t", "on"}
_FALSE = {"0", "false", "no", "n", "", "f", "off", "-"}


def parse_bool(text: str) -> bool | None:
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return None if t in ("", "-") else False
    raise ValueError(f"not a yes/no value: {text!r}")


def valid_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ValueError(f"invalid IP address {text!r}") from None


_MAC = re.compile(r"^[0-9a-f]{2}([:\-.]?[0-9a-f]{2}){5}$", re.IGNORECASE)


def valid_mac(text: str) -> str:
    """A MAC address in lower-case colon form; anything else is an error."""
    t = text.strip()
    if not _MAC.match(t):
        raise ValueError(f"invalid MAC address {text!r}")
    digits = re.sub(r"[^0-9a-f]", "", t.lower())
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def asset_key(name: str | None, ip: str | None, explicit_id: str | None) -> str:
    """The asset id: the inventory's own id if it has one, else the host name, else the IP address."""
    for key in (explicit_id, name, ip):
        if key and key.strip():
            return key.strip()
    raise ValueError("asset has no id, name or IP")


# ---- enrichment from detection --------------------------------------------------------------------
_INTERNAL = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)


def _internal(text: str) -> bool:
    """An address of the hospital's own networks (RFC 1918 / unique-local), where assets live."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    return any(ip.version == n.version and ip in n for n in _INTERNAL)


def discover_from_alerts(alerts: Iterable[Alert], known: Iterable[Asset]) -> list[Asset]:
    """Assets named by alerts (internal IPs, hosts, devices) that the inventory lacks, with what alerts tell.

    A device-identification alert may carry ``features['device_type']``; that sets the device type and the
    inferred criticality. Zones of discovered assets are "unknown" until someone places them.
    """
    known = list(known)
    seen_ips = {a.ip for a in known if a.ip}
    seen_names = {a.name.lower() for a in known} | {a.id.lower() for a in known}
    found: dict[str, Asset] = {}
    for alert in alerts:
        dtype = alert.features.get("device_type") if alert.features else None
        dtype_s = str(dtype) if isinstance(dtype, str) else None
        for ent in alert.entities:
            if ent.kind == EntityKind.IP:
                if ent.value in seen_ips or not _internal(ent.value):
                    continue  # an attacker's or partner's outside address is not an asset of ours
                aid = name = ip = ent.value
            elif ent.kind in (EntityKind.HOST, EntityKind.DEVICE):
                if ent.value.lower() in seen_names:
                    continue
                aid = name = ent.value
                ip = None
            else:
                continue
            prev = found.get(aid)
            if prev is not None and (prev.device_type or not dtype_s):
                continue
            crit, _why = infer_criticality(dtype_s, name)
            found[aid] = Asset(
                id=aid,
                name=name,
                role="discovered",
                zone="unknown",
                ip=ip,
                criticality=crit,
                device_type=dtype_s,
            )
    return sorted(found.values(), key=lambda a: a.id)


def merge_asset(existing: Asset, update: Asset) -> Asset:
    """Fill what ``existing`` lacks from ``update``; what the inventory says wins over discovery."""
    return replace(
        existing,
        ip=existing.ip or update.ip,
        mac=existing.mac or update.mac,
        owner=existing.owner or update.owner,
        device_type=existing.device_type or update.device_type,
        vendor=existing.vendor or update.vendor,
        product=existing.product or update.product,
        version=existing.version or update.version,
        cpe=existing.cpe or update.cpe,
        purl=existing.purl or update.purl,
    )


_ASSET_FIELDS = (
    "name",
    "ip",
    "mac",
    "role",
    "zone",
    "owner",
    "device_type",
    "vendor",
    "product",
    "version",
    "cpe",
    "purl",
)
_PROFILE_FIELDS = ("phi_records", "internet_facing", "phishing_exposed", "vendor_remote")


def overlay(existing: Asset, new: Asset, fields: set[str]) -> Asset:
    """Re-importing (e.g. a scanner file after the inventory) only changes the columns the file had."""
    changes: dict[str, object] = {f: getattr(new, f) for f in _ASSET_FIELDS if f in fields}
    if fields & {"criticality", "role", "device_type"}:
        changes["criticality"] = new.criticality
    return replace(existing, **changes)  # type: ignore[arg-type]


def overlay_profile(existing: AssetProfile, new: AssetProfile, fields: set[str]) -> AssetProfile:
    changes: dict[str, object] = {f: getattr(new, f) for f in _PROFILE_FIELDS if f in fields}
    if fields & {"criticality", "role", "device_type"}:
        changes["criticality_reason"] = new.criticality_reason
    return replace(existing, **changes)  # type: ignore[arg-type]


def apply_identification(
    asset: Asset, device_type: str, confidence: float, min_confidence: float = 0.8
) -> Asset:
    """Fold in what passive device identification found: fills an unknown device type and raises (never
    lowers) the criticality the type implies. Below ``min_confidence`` the asset is left unchanged."""
    if confidence < min_confidence:
        return asset
    crit, _why = infer_criticality(device_type)
    return replace(
        asset,
        device_type=asset.device_type or device_type,
        criticality=max(asset.criticality, crit),
    )


def exposure(asset: Asset, profile: AssetProfile | None) -> dict[str, tuple[bool, str]]:
    """Entry-point exposure of an asset: internet, phishing, vendor access -> (exposed, why).

    A flag the inventory gives (yes or no) wins; when it is unknown, defaults apply: DMZ assets face the
    internet, staff workstations read e-mail, VPN / jump hosts and the vendor zone admit vendors.
    """
    zone = canonical_zone(asset.zone)
    role = asset.role.lower()

    def pick(flag: bool | None, default: bool, why_default: str, name: str) -> tuple[bool, str]:
        if flag is not None:
            return flag, f"{name} ({'yes' if flag else 'no'} in the inventory)"
        return default, why_default if default else f"not {name}"

    p = profile
    return {
        "internet": pick(
            p.internet_facing if p else None, zone == "dmz", "internet-facing (DMZ)", "internet-facing"
        ),
        "phishing": pick(
            p.phishing_exposed if p else None,
            zone in ("corporate", "clinical") and "workstation" in role,
            "user e-mail (staff workstation)",
            "user e-mail (phishing)",
        ),
        "vendor": pick(
            p.vendor_remote if p else None,
            zone == "vendor" or bool(_REMOTE.search(role)),
            "vendor remote access (VPN / jump host / vendor zone)",
            "vendor remote access",
        ),
    }
