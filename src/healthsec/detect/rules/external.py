"""Alerts other sensors raised (Suricata EVE ``alert``, Wazuh ``alerts.json``) as healthsec alerts.

The sensor's own verdict is kept: Suricata's signature, signature id, category and severity; Wazuh's rule
id, description and level. ATT&CK comes from the record where it says so (Suricata rule metadata
``mitre_technique_id``/``mitre_tactic_name``, Wazuh ``rule.mitre``); otherwise from the pinned lookup
below by signature (ET rule-set prefixes and keywords; none of the public EVE samples carries MITRE
metadata). A signature the table does not know keeps no technique rather than a guessed one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from healthsec.model import Alert, Entity, EntityKind, EntityRole, Event, LogRecord, Severity
from healthsec.model.common import stable_id

# (pattern over the signature, technique ids, tactics) — first match wins; order from specific to general
SIGNATURE_ATTACK: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (r"\bssh\b.*\b(scan|brute)|brute.?force|login fail|password guess", ("T1110",), ("credential-access",)),
    (r"kerberoast|as-rep|\bkrb5?\b.*(tgs|weak)", ("T1558",), ("credential-access",)),
    (r"\b(psexec|admin\$|remcom|paexec)\b", ("T1021.002",), ("lateral-movement",)),
    (r"\bdns query to .*(hostile|\.top|dyndns)|\bdga\b", ("T1071.004",), ("command-and-control",)),
    (r"\btor\b|\.onion", ("T1090.003",), ("command-and-control",)),
    (
        r"encoded binary|exe download|executable|\bpe exe\b|dll download|ps1 download",
        ("T1105",),
        ("command-and-control",),
    ),
    (r"\b(cnc|c2|checkin|beacon|command and control)\b", ("T1071",), ("command-and-control",)),
    (
        r"^(et|gpl) (malware|trojan|worm|current_events|mobile_malware)\b",
        ("T1071",),
        ("command-and-control",),
    ),
    (r"^et (scan|dos)\b.*(nmap|masscan|zmap|sipvicious|port|sweep|scan)", ("T1046",), ("discovery",)),
    (r"^(et|gpl) scan\b", ("T1595",), ("reconnaissance",)),
    (
        r"sql injection|\bxss\b|cross site|command injection|remote code|\brce\b|directory traversal|\.\./",
        ("T1190",),
        ("initial-access",),
    ),
    (r"^(et|gpl) (exploit|web_server|web_specific_apps)\b|cve-\d{4}-\d+", ("T1190",), ("initial-access",)),
    (r"^(et|gpl) attack_response\b", ("T1059",), ("execution",)),
    (r"^(et|gpl) (dos)\b|denial of service|flood", ("T1498",), ("impact",)),
    (r"^et (cins|drop|compromised|3coresec|ciarmy)\b", ("T1595",), ("reconnaissance",)),
)
_COMPILED = tuple((re.compile(p, re.IGNORECASE), t, a) for p, t, a in SIGNATURE_ATTACK)
_SURICATA_SEVERITY = {1: Severity.HIGH, 2: Severity.MEDIUM, 3: Severity.LOW, 4: Severity.INFO}


def attack_by_signature(signature: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    for rx, techniques, tactics in _COMPILED:
        if rx.search(signature):
            return techniques, tactics
    return (), ()


def _tactic(name: str) -> str:
    return re.sub(r"[^a-z]+", "-", name.lower()).strip("-")


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def wazuh_severity(level: int) -> Severity:
    """Wazuh rule levels 0..15 (16 in some versions) in five bands."""
    if level >= 13:
        return Severity.CRITICAL
    if level >= 10:
        return Severity.HIGH
    if level >= 7:
        return Severity.MEDIUM
    if level >= 4:
        return Severity.LOW
    return Severity.INFO


def _entities(f: Any, host: str | None) -> tuple[Entity, ...]:
    out: list[Entity] = []
    for key, role in (("src_ip", EntityRole.ACTOR), ("dest_ip", EntityRole.TARGET)):
        v = f.get(key)
        if isinstance(v, str) and v:
            out.append(Entity(EntityKind.IP, v, role))
    for key, kind, role in (
        ("data.srcip", EntityKind.IP, EntityRole.ACTOR),
        ("data.dstip", EntityKind.IP, EntityRole.TARGET),
        ("agent.ip", EntityKind.IP, EntityRole.TARGET),
        ("data.srcuser", EntityKind.USER, EntityRole.ACTOR),
        ("data.dstuser", EntityKind.USER, EntityRole.TARGET),
    ):
        v = f.get(key)
        if isinstance(v, str) and v and v != "any":
            out.append(Entity(kind, v, role))
    if host:
        out.append(Entity(EntityKind.HOST, host, EntityRole.TARGET))
    return tuple(dict.fromkeys(out))


class ExternalAlertDetector:
    """Raises one alert per Suricata ``alert`` record and per Wazuh alert at or above ``min_wazuh_level``."""

    name = "external-alerts"
    version = "1.0"

    def __init__(self, min_wazuh_level: int = 3) -> None:
        self.min_wazuh_level = min_wazuh_level

    def fit(self, events: Iterable[Event]) -> None:
        """The sensors decided; nothing to learn."""

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        out: list[Alert] = []
        for e in events:
            if not isinstance(e, LogRecord):
                continue
            if e.provider == "suricata" and e.channel == "suricata/alert":
                out.append(self._suricata(e))
            elif e.provider == "wazuh":
                level = e.fields.get("rule.level")
                if isinstance(level, int) and level >= self.min_wazuh_level:
                    out.append(self._wazuh(e, level))
        return out

    def _suricata(self, e: LogRecord) -> Alert:
        f = e.fields
        sig = str(f.get("alert.signature") or e.message or "?")
        techniques = tuple(_list(f.get("alert.metadata.mitre_technique_id")))
        tactics = tuple(_tactic(t) for t in _list(f.get("alert.metadata.mitre_tactic_name")))
        how = "rule metadata"
        if not techniques:
            techniques, tactics = attack_by_signature(sig)
            how = "signature lookup" if techniques else "none"
        sev_raw = f.get("alert.severity")
        severity = _SURICATA_SEVERITY.get(sev_raw if isinstance(sev_raw, int) else 3, Severity.LOW)
        sid = f.get("alert.signature_id")
        src, dst = f.get("src_ip"), f.get("dest_ip")
        return Alert(
            id=stable_id("alert", self.name, e.id),
            ts=e.ts,
            detector=self.name,
            detector_version=self.version,
            title=f"Suricata: {sig}"[:300],
            score={Severity.HIGH: 0.9, Severity.MEDIUM: 0.6, Severity.LOW: 0.3}.get(severity, 0.1),
            severity=severity,
            explanation=(
                f'Suricata signature {sid} "{sig}" ({f.get("alert.category") or "no category"}, '
                f"severity {sev_raw}) from {src}:{f.get('src_port')} to {dst}:{f.get('dest_port')}; "
                f"ATT&CK from {how}."
            ),
            evidence=(e.id,),
            entities=_entities(f, None),
            techniques=techniques,
            tactics=tactics,
            features={
                "sensor": "suricata",
                "signature": sig,
                "signature_id": str(sid) if sid is not None else None,
                "category": str(f.get("alert.category")) if f.get("alert.category") else None,
                "attack_source": how,
            },
        )

    def _wazuh(self, e: LogRecord, level: int) -> Alert:
        f = e.fields
        desc = str(f.get("rule.description") or e.message or "?")
        techniques = tuple(_list(f.get("rule.mitre.id")))
        tactics = tuple(_tactic(t) for t in _list(f.get("rule.mitre.tactic")))
        how = "Wazuh rule" if techniques else "none"
        if not techniques:
            techniques, tactics = attack_by_signature(desc)
            how = "signature lookup" if techniques else "none"
        severity = wazuh_severity(level)
        return Alert(
            id=stable_id("alert", self.name, e.id),
            ts=e.ts,
            detector=self.name,
            detector_version=self.version,
            title=f"Wazuh: {desc}"[:300],
            score=round(min(1.0, level / 15), 4),
            severity=severity,
            explanation=(
                f'Wazuh rule {f.get("rule.id")} level {level} "{desc}" on agent {e.host or "?"}'
                f" (decoder {f.get('decoder.name') or '?'}); ATT&CK from {how}."
            ),
            evidence=(e.id,),
            entities=_entities(f, e.host),
            techniques=techniques,
            tactics=tactics,
            features={
                "sensor": "wazuh",
                "rule_id": str(f.get("rule.id")),
                "level": level,
                "attack_source": how,
            },
        )
