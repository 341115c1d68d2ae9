"""Built-in host rules over process-creation logs: the ransomware precursors hospitals see most."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from healthsec.model import Alert, Entity, EntityKind, EntityRole, Event, LogRecord, Severity, stable_id


@dataclass(frozen=True, slots=True)
class ProcessRule:
    """One rule: every (field, regex) must match a process-creation record (case-insensitive)."""

    rule_id: str
    title: str
    conditions: tuple[tuple[str, str], ...]
    techniques: tuple[str, ...]
    tactic: str
    severity: Severity


# Hand-written because the foundation needs rules before the Sigma engine lands; each mirrors a SigmaHQ
# rule of the same intent (named in the title) and is kept deliberately small.
RULES: tuple[ProcessRule, ...] = (
    ProcessRule(
        "hs-0001",
        "Office application spawned PowerShell (proc_creation_win_office_shell)",
        (
            ("ParentImage", r"\\(winword|excel|powerpnt|outlook)\.exe$"),
            ("Image", r"\\(powershell|pwsh|cmd|wscript|mshta)\.exe$"),
        ),
        ("T1566.001", "T1059.001"),
        "execution",
        Severity.HIGH,
    ),
    ProcessRule(
        "hs-0002",
        "Encoded PowerShell command line (proc_creation_win_powershell_base64)",
        (("Image", r"\\(powershell|pwsh)\.exe$"), ("CommandLine", r"\s-(e|en|enc|enco|encodedcommand)\s")),
        ("T1059.001", "T1027"),
        "execution",
        Severity.HIGH,
    ),
    ProcessRule(
        "hs-0003",
        "LSASS dumped with comsvcs MiniDump (proc_creation_win_rundll32_process_dump)",
        (("CommandLine", r"comsvcs(\.dll)?[, ]+#?(minidump|24)"),),
        ("T1003.001",),
        "credential-access",
        Severity.CRITICAL,
    ),
    ProcessRule(
        "hs-0004",
        "Volume shadow copies deleted (proc_creation_win_vssadmin_delete_shadows)",
        (("Image", r"\\vssadmin\.exe$"), ("CommandLine", r"delete\s+shadows")),
        ("T1490",),
        "impact",
        Severity.CRITICAL,
    ),
    ProcessRule(
        "hs-0005",
        "PsExec service started (proc_creation_win_sysinternals_psexec_paexec)",
        (("Image", r"\\(psexesvc|paexec[^\\]*)\.exe$"),),
        ("T1569.002", "T1021.002"),
        "lateral-movement",
        Severity.HIGH,
    ),
    ProcessRule(
        "hs-0006",
        "Domain admin group discovery (proc_creation_win_net_groups_and_accounts_recon)",
        (("Image", r"\\net1?\.exe$"), ("CommandLine", r"group\s+\"?domain admins")),
        ("T1069.002",),
        "discovery",
        Severity.MEDIUM,
    ),
)


class HostRuleDetector:
    """Matches process-creation records (Sysmon 1, Security 4688) against the built-in rules."""

    name = "host-rules"
    version = "1.0"

    def __init__(self, rules: Sequence[ProcessRule] = RULES) -> None:
        self.rules = tuple(rules)
        self._compiled = [
            (r, [(f, re.compile(p, re.IGNORECASE)) for f, p in r.conditions]) for r in self.rules
        ]

    def fit(self, events: Iterable[Event]) -> None:
        """Rules need no baseline."""

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        alerts = []
        for e in events:
            if not isinstance(e, LogRecord) or not _is_process_creation(e):
                continue
            for rule, conds in self._compiled:
                matched = {}
                for field_name, rx in conds:
                    value = e.fields.get(field_name)
                    if value is None and field_name == "Image":
                        value = e.fields.get("NewProcessName")
                    if value is None or not rx.search(str(value)):
                        break
                    matched[field_name] = str(value)
                else:
                    alerts.append(self._alert(rule, e, matched))
        return alerts

    def _alert(self, rule: ProcessRule, e: LogRecord, matched: dict[str, str]) -> Alert:
        user = str(e.fields.get("User") or e.fields.get("SubjectUserName") or "")
        entities = [Entity(EntityKind.HOST, e.host or "?", EntityRole.ACTOR)]
        if user and user.split("\\")[-1].upper() not in ("SYSTEM", ""):
            entities.append(Entity(EntityKind.USER, user.split("\\")[-1], EntityRole.ACTOR))
        shown = "; ".join(f"{k} = {v[:160]}" for k, v in matched.items())
        return Alert(
            id=stable_id("alert", self.name, rule.rule_id, e.id),
            ts=e.ts,
            detector=self.name,
            detector_version=self.version,
            title=f"{rule.title.split(' (')[0]} on {e.host}",
            score=1.0,
            severity=rule.severity,
            explanation=f'Rule {rule.rule_id} "{rule.title}" matched on {e.host}: {shown}.',
            evidence=(e.id,),
            entities=tuple(entities),
            techniques=rule.techniques,
            tactics=(rule.tactic,),
            features=dict(matched),
        )


def _is_process_creation(e: LogRecord) -> bool:
    return (e.event_id == 1 and (e.channel or "").endswith("Sysmon/Operational")) or e.event_id == 4688
