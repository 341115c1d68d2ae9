"""Sigma logsource (product/category/service) to log channels, event ids and field renames."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sigma.pipelines.common import windows_logsource_mapping  # pySigma's own service -> channel table

from healthsec.detect.rules.sigma.audit import AUDIT_CATEGORIES

SYSMON = "microsoft-windows-sysmon/operational"
PS_OPERATIONAL = ("microsoft-windows-powershell/operational", "powershellcore/operational")
PS_CLASSIC = "windows powershell"

# Sysmon event ids per generic category, as pySigma's Sysmon pipeline maps them.
SYSMON_CATEGORIES: dict[str, tuple[int, ...]] = {
    "process_creation": (1,),
    "file_change": (2,),
    "network_connection": (3,),
    "sysmon_status": (4, 16),
    "process_termination": (5,),
    "driver_load": (6,),
    "image_load": (7,),
    "create_remote_thread": (8,),
    "raw_access_thread": (9,),
    "process_access": (10,),
    "file_event": (11,),
    "registry_add": (12,),
    "registry_delete": (12,),
    "registry_set": (13,),
    "registry_rename": (14,),
    "registry_event": (12, 13, 14),
    "create_stream_hash": (15,),
    "pipe_created": (17, 18),
    "wmi_event": (19, 20, 21),
    "dns_query": (22,),
    "file_delete": (23, 26),
    "clipboard_capture": (24,),
    "process_tampering": (25,),
    "file_delete_detected": (26,),
    "file_block_executable": (27,),
    "file_block_shredding": (28,),
    "file_executable_detected": (29,),
    "sysmon_error": (255,),
}
POWERSHELL_CATEGORIES: dict[str, tuple[tuple[str, ...], int]] = {
    "ps_module": (PS_OPERATIONAL, 4103),
    "ps_script": (PS_OPERATIONAL, 4104),
    "ps_classic_start": ((PS_CLASSIC,), 400),
    "ps_classic_provider_start": ((PS_CLASSIC,), 600),
    "ps_classic_script": ((PS_CLASSIC,), 800),
}
ABSENT = "@absent"  # a rename to this reads as a missing field (the audit event lacks it)
LINUX_SERVICES = {
    "auditd": ("auditd",),
    "syslog": ("syslog",),
    "auth": ("syslog",),
    "sshd": ("syslog",),
    "sudo": ("syslog",),
    "cron": ("syslog",),
    "clamav": ("syslog",),
    "vsftpd": ("syslog",),
    "guacamole": ("syslog",),
}
# syslog services that name a program: only that program's lines are in scope
LINUX_PROGRAMS = {
    "sshd": ("sshd",),
    "sudo": ("sudo",),
    "cron": ("cron", "crond", "CRON"),
    "clamav": ("clamd", "freshclam"),
    "vsftpd": ("vsftpd",),
}


# Services SigmaHQ uses that pySigma's table lacks (channel names as Windows writes them).
EXTRA_SERVICES = {
    "smbserver-connectivity": "Microsoft-Windows-SMBServer/Connectivity",
    "smbclient-connectivity": "Microsoft-Windows-SmbClient/Connectivity",
}
ANY_WINDOWS = "*"  # product windows with neither category nor service: every Windows channel
NOT_WINDOWS = ("zeek:", "syslog", "auditd")


@dataclass(frozen=True)
class Target:
    """One place a rule applies: channels (lower case), optional event ids and programs, field renames.

    ``where`` names a row test of ``audit.WHERE`` (e.g. 4657 rows of one operation type);
    ``unavailable`` are Sigma fields the events lack (a rule filtering on one is not run here) and
    ``strict`` the fields whose mere use keeps a rule off this target (as pySigma's pipeline fails it).
    """

    channels: frozenset[str]
    event_ids: frozenset[int] | None = None
    programs: frozenset[str] | None = None
    renames: Mapping[str, str] = field(default_factory=dict)
    where: str | None = None
    unavailable: frozenset[str] = frozenset()
    strict: frozenset[str] = frozenset()

    def usable_by(self, used: frozenset[str], negated: frozenset[str]) -> bool:
        """Whether a rule using ``used`` fields (``negated`` of them inside ``not``) can run here."""
        return not (self.strict & used) and not (self.unavailable & negated)

    def accepts(self, channel: str | None, event_id: int | None, program: str | None) -> bool:
        if channel is None:
            return False
        if ANY_WINDOWS in self.channels:
            if channel.startswith(NOT_WINDOWS):
                return False
        elif channel.lower() not in self.channels:
            return False
        if self.event_ids is not None and event_id not in self.event_ids:
            return False
        return self.programs is None or (program is not None and program in self.programs)


class UnsupportedLogsource(ValueError):
    """The rule's logsource has no mapping to logs we ingest (the reason says which part)."""


def _windows_channels(service: str) -> frozenset[str]:
    chans = windows_logsource_mapping.get(service) or EXTRA_SERVICES.get(service)
    if chans is None:
        raise UnsupportedLogsource(f"windows service '{service}' has no channel mapping")
    if isinstance(chans, str):
        chans = [chans]
    return frozenset(c.lower() for c in chans)


def targets_for(product: str | None, category: str | None, service: str | None) -> tuple[Target, ...]:
    """Map a Sigma logsource to targets; raise UnsupportedLogsource when we cannot place it."""
    product = (product or "").lower() or None
    category = (category or "").lower() or None
    service = (service or "").lower() or None
    if product == "windows" or (product is None and category in SYSMON_CATEGORIES | POWERSHELL_CATEGORIES):
        return _windows_targets(category, service)
    if product == "linux":
        return _linux_targets(category, service)
    if product == "zeek":
        if service is None:
            raise UnsupportedLogsource("zeek logsource without service")
        return (Target(frozenset({f"zeek:{service}"})),)
    raise UnsupportedLogsource(
        f"logsource product={product} category={category} service={service} has no log mapping"
    )


def _windows_targets(category: str | None, service: str | None) -> tuple[Target, ...]:
    if category is None and service is None:
        return (Target(frozenset({ANY_WINDOWS})),)
    if category is None:
        assert service is not None
        return (Target(_windows_channels(service)),)
    targets: list[Target] = []
    if category in SYSMON_CATEGORIES:
        if service not in (None, "sysmon"):
            raise UnsupportedLogsource(f"windows category '{category}' with service '{service}'")
        targets.append(Target(frozenset({SYSMON}), frozenset(SYSMON_CATEGORIES[category])))
        audit = AUDIT_CATEGORIES.get(category)
        if audit is not None:  # the same category on hosts with only the Security channel
            renames = {f: ABSENT for f in audit.unavailable} | audit.renames
            targets.append(
                Target(
                    frozenset({"security"}),
                    frozenset({audit.event_id}),
                    renames=renames,
                    where=audit.where,
                    unavailable=audit.unavailable,
                    strict=audit.strict,
                )
            )
    elif category in POWERSHELL_CATEGORIES:
        chans, eid = POWERSHELL_CATEGORIES[category]
        targets.append(Target(frozenset(chans), frozenset({eid})))
    else:
        raise UnsupportedLogsource(f"windows category '{category}' has no event mapping")
    return tuple(targets)


def _linux_targets(category: str | None, service: str | None) -> tuple[Target, ...]:
    if service is not None and category is None:
        chans = LINUX_SERVICES.get(service)
        if chans is None:
            raise UnsupportedLogsource(f"linux service '{service}' has no log mapping")
        progs = LINUX_PROGRAMS.get(service)
        return (Target(frozenset(chans), programs=frozenset(progs) if progs else None),)
    if category is None:
        return (Target(frozenset({"syslog", "auditd"})),)
    raise UnsupportedLogsource(
        f"linux category '{category}' needs Sysmon for Linux or eBPF telemetry, which we do not ingest"
    )
