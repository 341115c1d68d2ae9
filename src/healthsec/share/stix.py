"""STIX 2.1 export of incidents and alerts, and guarded import of partner bundles, built as plain dicts.

The OASIS ``stix2`` library parses a few thousand objects per second (see NOTES), so bundles are built
and parsed here as plain dicts with orjson in bulk; the OASIS ``stix2-validator`` checks them at the edge
(``validate_bundle``) and the tests and the benchmark hold every exported bundle to it.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from healthsec.analyze.advisories import Advisory
from healthsec.model import Alert, EntityKind, EntityRole, Incident
from healthsec.share.policy import TLP, tlp_marking_definition
from healthsec.share.stix_ids import sco_id, sdo_id, stix_time
from healthsec.share.stix_import import BundleRejected, ImportResult, import_bundle, parse_bundle

__all__ = [
    "BundleRejected",
    "ImportResult",
    "dumps_bundle",
    "export_bundle",
    "import_bundle",
    "parse_bundle",
    "producer_identity",
    "validate_bundle",
]

StixObject = dict[str, Any]

_CVE = re.compile(r"\bCVE-\d{4}-\d{4,7}\b", re.IGNORECASE)
_SEVERITY_PRIORITY = {0: "informational", 1: "low", 2: "medium", 3: "high", 4: "critical"}


def producer_identity(producer: str, *, created: datetime | None = None) -> StixObject:
    """The producing organisation as a STIX identity (deterministic id from its name)."""
    when = stix_time(created or datetime(2026, 1, 1, tzinfo=UTC))
    return {
        "type": "identity",
        "spec_version": "2.1",
        "id": sdo_id("identity", "organisation", producer),
        "created": when,
        "modified": when,
        "name": producer,
        "identity_class": "organization",
        "sectors": ["healthcare"],
    }


def _confidence(score: float) -> int | None:
    """Alert scores in 0..1 map to STIX confidence 0..100; any other scale is not guessed (None)."""
    if 0.0 <= score <= 1.0:
        return round(score * 100)
    return None


def _ip_sco(value: str) -> StixObject | None:
    try:
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    stype = "ipv4-addr" if addr.version == 4 else "ipv6-addr"
    return {
        "type": stype,
        "spec_version": "2.1",
        "id": sco_id(stype, {"value": str(addr)}),
        "value": str(addr),
    }


def _pattern_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


class _Builder:
    """Accumulates objects once per id, in insertion order."""

    def __init__(self, producer: StixObject, tlp: TLP) -> None:
        self.objects: dict[str, StixObject] = {}
        self.marking = tlp_marking_definition(tlp)
        self.producer = dict(producer) | {"object_marking_refs": [self.marking["id"]]}
        self.add(self.marking)
        self.add(self.producer)

    def add(self, obj: StixObject) -> str:
        self.objects.setdefault(obj["id"], obj)
        return str(obj["id"])

    def sdo(self, stype: str, key: Sequence[object], created: str, modified: str, **props: Any) -> str:
        oid = sdo_id(stype, *key)
        if oid not in self.objects:
            obj: StixObject = {
                "type": stype,
                "spec_version": "2.1",
                "id": oid,
                "created": created,
                "modified": modified,
                "created_by_ref": self.producer["id"],
            }
            obj.update({k: v for k, v in props.items() if v is not None})
            obj["object_marking_refs"] = [self.marking["id"]]
            self.objects[oid] = obj
        return oid

    def sco(self, sco: StixObject) -> str:
        sco = dict(sco)
        sco["object_marking_refs"] = [self.marking["id"]]
        return self.add(sco)

    def attack_pattern(self, technique: str, created: str) -> str:
        return self.sdo(
            "attack-pattern",
            ("mitre-attack", technique),
            created,
            created,
            name=technique,
            external_references=[
                {
                    "source_name": "mitre-attack",
                    "external_id": technique,
                    "url": "https://attack.mitre.org/techniques/" + technique.replace(".", "/") + "/",
                }
            ],
        )

    def vulnerability(self, cve: str, created: str) -> str:
        cve = cve.upper()
        return self.sdo(
            "vulnerability",
            ("cve", cve),
            created,
            created,
            name=cve,
            external_references=[{"source_name": "cve", "external_id": cve}],
        )


def _alert_objects(b: _Builder, alert: Alert) -> list[str]:
    """Indicators, observed data, sighting, attack patterns and vulnerabilities of one alert."""
    ts = stix_time(alert.ts)
    refs: list[str] = []
    confidence = _confidence(alert.score)
    patterns = [b.attack_pattern(t, ts) for t in alert.techniques]
    refs += patterns
    text = " ".join([alert.title, alert.explanation, *(str(v) for v in alert.features.values())])
    refs += [b.vulnerability(c, ts) for c in dict.fromkeys(m.upper() for m in _CVE.findall(text))]
    observed: list[str] = []
    indicators: list[str] = []
    # Only network addresses and file names become observables and indicators: user names, patient
    # ids and device serials are never turned into shareable STIX content here.
    for ent in alert.entities:
        if ent.kind is EntityKind.IP:
            sco = _ip_sco(ent.value)
            if sco is None:
                continue
            observed.append(b.sco(sco))
            if ent.role is EntityRole.ACTOR:
                pattern = f"[{sco['type']}:value = '{sco['value']}']"
        elif ent.kind is EntityKind.FILE:
            sco = {
                "type": "file",
                "spec_version": "2.1",
                "id": sco_id("file", {"name": ent.value}),
                "name": ent.value,
            }
            observed.append(b.sco(sco))
            pattern = f"[file:name = '{_pattern_string(ent.value)}']"
        else:
            continue
        if ent.kind is EntityKind.FILE or ent.role is EntityRole.ACTOR:
            ind = b.sdo(
                "indicator",
                ("pattern", pattern),
                ts,
                ts,
                name=f"{ent.kind.value} seen in: {alert.title}"[:250],
                indicator_types=["malicious-activity"],
                pattern=pattern,
                pattern_type="stix",
                valid_from=ts,
                confidence=confidence,
            )
            indicators.append(ind)
            for ap in patterns:
                b.sdo(
                    "relationship",
                    (ind, "indicates", ap),
                    ts,
                    ts,
                    relationship_type="indicates",
                    source_ref=ind,
                    target_ref=ap,
                )
    refs += indicators
    od: str | None = None
    if observed:
        od = b.sdo(
            "observed-data",
            ("alert", alert.id),
            ts,
            ts,
            first_observed=ts,
            last_observed=ts,
            number_observed=1,
            object_refs=list(dict.fromkeys(observed)),
        )
        refs.append(od)
    target = indicators[0] if indicators else (patterns[0] if patterns else None)
    if target is not None:
        refs.append(
            b.sdo(
                "sighting",
                ("alert", alert.id),
                ts,
                ts,
                description=alert.title,
                first_seen=ts,
                last_seen=ts,
                count=1,
                sighting_of_ref=target,
                observed_data_refs=[od] if od else None,
                where_sighted_refs=[b.producer["id"]],
                confidence=confidence,
            )
        )
    return refs


def export_bundle(
    incidents: Iterable[Incident],
    alerts: Iterable[Alert],
    *,
    producer: str,
    tlp: TLP = TLP.AMBER,
    bundle_id: str | None = None,
) -> StixObject:
    """A STIX 2.1 bundle: each incident as ``incident`` + ``report``, each alert's indicators, observed
    data, sighting, ATT&CK ``attack-pattern``\\ s and CVE ``vulnerability``\\ s, the producer ``identity``
    and one TLP 2.0 marking on everything. Ids are deterministic, so re-exporting dedupes at the partner.

    This only builds; sharing with a partner goes through the policy and privacy door
    (``healthsec.share.outbound``), never straight from here.
    """
    by_id = {a.id: a for a in alerts}
    incidents = list(incidents)
    first = min([i.first_seen for i in incidents] + [a.ts for a in by_id.values()], default=None)
    b = _Builder(producer_identity(producer, created=first), tlp)
    in_incident: set[str] = set()
    for inc in incidents:
        created, modified = stix_time(inc.first_seen), stix_time(inc.last_seen)
        members: list[str] = []
        for aid in inc.alert_ids:
            alert = by_id.get(aid)
            if alert is not None:
                in_incident.add(aid)
                members += _alert_objects(b, alert)
        members += [b.attack_pattern(t, created) for t in inc.techniques]
        iid = b.sdo(
            "incident",
            ("incident", inc.id),
            created,
            modified,
            name=inc.title,
            description=inc.summary or None,
            kill_chain_phases=[
                {"kill_chain_name": "mitre-attack", "phase_name": t.replace("_", "-").lower()}
                for t in inc.tactics
            ]
            or None,
            labels=[f"severity:{inc.severity.label}", f"status:{inc.status.value}"],
        )
        for ap in dict.fromkeys(m for m in members if m.startswith("attack-pattern--")):
            b.sdo(
                "relationship",
                (iid, "uses", ap),
                created,
                modified,
                relationship_type="uses",
                source_ref=iid,
                target_ref=ap,
            )
        b.sdo(
            "report",
            ("report", inc.id),
            created,
            modified,
            name=f"Incident report: {inc.title}"[:250],
            description=inc.summary or None,
            published=modified,
            report_types=["attack-pattern", "indicator", "observed-data"],
            object_refs=list(dict.fromkeys([iid, *members])),
        )
    for alert in by_id.values():
        if alert.id not in in_incident:
            _alert_objects(b, alert)
    return {
        "type": "bundle",
        "id": bundle_id or f"bundle--{uuid.uuid4()}",
        "objects": list(b.objects.values()),
    }


def advisory_bundle(
    advisories: Iterable[Advisory], *, producer: str, tlp: TLP = TLP.CLEAR, bundle_id: str | None = None
) -> StixObject:
    """Imported advisories as STIX 2.1: per advisory a ``report`` (report_types ``vulnerability``, the
    advisory id as external reference, its extractive summary) referring to one ``vulnerability`` per CVE
    (the same deterministic ids incident exports use; CWE as a reference, the CVSS vector and base score
    as ``x_healthsec_cvss_*``). Advisories without a CVE are left out. Only builds: partners read it
    through the TAXII exit door (``release_page``), like every other shared object."""
    advisories = list(advisories)
    b = _Builder(producer_identity(producer), tlp)
    for adv in advisories:
        created = _advisory_time(adv.initial_release or adv.current_release)
        modified = max(created, _advisory_time(adv.current_release or adv.initial_release))
        refs: list[str] = []
        for v in adv.vulns:
            if not v.cve or not _CVE.fullmatch(v.cve.upper()):
                continue
            vid = b.vulnerability(v.cve, created)
            vuln = b.objects[vid]
            if v.cwe and not any(r["source_name"] == "cwe" for r in vuln["external_references"]):
                vuln["external_references"].append({"source_name": "cwe", "external_id": v.cwe})
            if v.description and "description" not in vuln:
                vuln["description"] = v.description
            if v.cvss_vector and "x_healthsec_cvss_vector" not in vuln:
                vuln["x_healthsec_cvss_vector"] = v.cvss_vector
                if v.base_score is not None:
                    vuln["x_healthsec_cvss_base_score"] = v.base_score
            refs.append(vid)
        if not refs:
            continue
        source = {"source_name": adv.publisher or "csaf", "external_id": adv.id}
        b.sdo(
            "report",
            ("advisory", adv.id, adv.revision or ""),
            created,
            modified,
            name=f"{adv.id}: {adv.title}"[:250],
            description=adv.summary or None,
            published=modified,
            report_types=["vulnerability"],
            external_references=[source],
            object_refs=list(dict.fromkeys(refs)),
        )
    return {
        "type": "bundle",
        "id": bundle_id or f"bundle--{uuid.uuid4()}",
        "objects": list(b.objects.values()),
    }


_CVE = re.compile(r"CVE-\d{4}-\d{4,}")


def _advisory_time(value: str | None) -> str:
    """A CSAF date-time as a STIX timestamp (CSAF allows offsets; STIX wants UTC with Z)."""
    if value:
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return stix_time(when if when.tzinfo else when.replace(tzinfo=UTC))
        except ValueError:
            pass
    return stix_time(datetime(1970, 1, 1, tzinfo=UTC))


def dumps_bundle(bundle: Mapping[str, Any]) -> bytes:
    """Serialise a bundle (orjson: two orders of magnitude faster than the stix2 serialiser)."""
    return orjson.dumps(bundle)


def validate_bundle(bundle: Mapping[str, Any] | bytes) -> list[str]:
    """Errors the OASIS stix2-validator finds in a bundle (empty when valid)."""
    from stix2validator import ValidationOptions, validate_instance

    instance = orjson.loads(bundle) if isinstance(bundle, bytes) else dict(bundle)
    result = validate_instance(instance, ValidationOptions(strict=False))
    out: list[str] = []
    for obj_result in result.object_results if hasattr(result, "object_results") else [result]:
        out += [f"{obj_result.object_id}: {e.message}" for e in obj_result.errors]
    if not result.is_valid and not out:
        out.append("bundle is not valid STIX 2.1")
    return out
