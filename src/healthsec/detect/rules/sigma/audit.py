"""Sigma categories on hosts without Sysmon: Security-audit events, their field maps and derived fields.

The maps follow pySigma's ``windows_audit_pipeline`` (process_creation → 4688, registry → 4657 with
``OperationType``, Image → NewProcessName/ProcessName, TargetObject → ObjectName, Details → NewValue,
LogonId → SubjectLogonId) and extend it to the other categories that have an audit-log equivalent
(network_connection → 5156, file_event/file_delete → 4663, process_access → 4656). ``pipe_created``
is not mapped to 5145: that event records a client opening a pipe over SMB (routine remote service
administration opens ``\\svcctl``), not a pipe being created, and rules for malicious pipe names fired
on it for ordinary remote administration on the OTRF recordings.

Where the audit event spells a value differently from Sysmon, a *derived* field (name starting with
``@``) computes Sysmon's spelling from the audit fields, so a rule written for Sysmon compares like
with like. A field the audit event does not carry cannot be filtered on: a rule that uses one inside
``not`` (a filter) is not run on that event, since its filter could never hold there and the rule would
fire on everything its selection matches. docs/sigma.md has the table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

# ---- derived fields (Sysmon's spelling computed from the audit event) -----------------------------
_SID_NAMES = {
    "S-1-5-18": "NT AUTHORITY\\SYSTEM",
    "S-1-5-19": "NT AUTHORITY\\LOCAL SERVICE",
    "S-1-5-20": "NT AUTHORITY\\NETWORK SERVICE",
}
_EMPTY = {"", "-", "S-1-0-0"}
_HIVES = (
    ("\\registry\\machine", "HKLM"),
    ("\\registry\\user", "HKU"),
)
_DEVICE = re.compile(r"^\\device\\harddiskvolume\d+\\", re.IGNORECASE)
_PROTOCOLS = {"6": "tcp", "17": "udp", "1": "icmp", "58": "ipv6-icmp"}
_DIRECTION = {"%%14593": "true", "outbound": "true", "%%14592": "false", "inbound": "false"}
_DWORD_TYPES = {"%%1876", "reg_dword"}


def _text(rec: Mapping[str, object], name: str) -> str | None:
    value = rec.get(name)
    return None if value is None else str(value)


def _account(rec: Mapping[str, object], prefix: str) -> str | None:
    sid = (_text(rec, f"{prefix}UserSid") or "").strip()
    if sid in _SID_NAMES:
        return _SID_NAMES[sid]
    user = (_text(rec, f"{prefix}UserName") or "").strip()
    if user in _EMPTY:
        return None
    domain = (_text(rec, f"{prefix}DomainName") or "").strip()
    return f"{domain}\\{user}" if domain not in _EMPTY else user


def process_user(rec: Mapping[str, object]) -> str | None:
    """Sysmon's ``User`` (DOMAIN\\name of the new process) from 4688: the target account when logged,
    else the creator (subject); the well-known service SIDs read as Sysmon writes them."""
    return _account(rec, "Target") or _account(rec, "Subject")


def subject_user(rec: Mapping[str, object]) -> str | None:
    return _account(rec, "Subject")


def dos_path(value: str | None) -> str | None:
    """``\\Device\\HarddiskVolumeN\\x`` (WFP and object auditing) as ``C:\\x`` (Sysmon's spelling).

    The volume-to-letter map is not in the event; the system volume is C: on nearly every host."""
    if value is None:
        return None
    return _DEVICE.sub("C:\\\\", value)


def registry_path(rec: Mapping[str, object]) -> str | None:
    """Sysmon's ``TargetObject`` (HKLM\\...\\value) from 4657's ObjectName and ObjectValueName."""
    key = _text(rec, "ObjectName")
    if key is None:
        return None
    low = key.lower()
    for prefix, hive in _HIVES:
        if low.startswith(prefix):
            key = hive + key[len(prefix) :]
            break
    value = _text(rec, "ObjectValueName")
    return f"{key}\\{value}" if value not in (None, "", "-") else key


def registry_details(rec: Mapping[str, object]) -> str | None:
    """Sysmon's ``Details`` from 4657's NewValue: DWORDs as ``DWORD (0x0000000n)``, the rest as logged."""
    value = _text(rec, "NewValue")
    vtype = (_text(rec, "NewValueType") or "").strip().lower()
    if value is not None and vtype in _DWORD_TYPES:
        try:
            return f"DWORD (0x{int(value.strip(), 0):08x})"
        except ValueError:
            return value
    return value


DERIVED: dict[str, Callable[[Mapping[str, object]], str | None]] = {
    "@absent": lambda r: None,
    "@process_user": process_user,
    "@subject_user": subject_user,
    "@registry_path": registry_path,
    "@registry_details": registry_details,
    "@new_process_dos": lambda r: dos_path(_text(r, "NewProcessName")),
    "@parent_process_dos": lambda r: dos_path(_text(r, "ParentProcessName")),
    "@process_dos": lambda r: dos_path(_text(r, "ProcessName")),
    "@application_dos": lambda r: dos_path(_text(r, "Application")),
    "@object_dos": lambda r: dos_path(_text(r, "ObjectName")),
    "@protocol": lambda r: _PROTOCOLS.get((_text(r, "Protocol") or "").strip()),
    "@initiated": lambda r: _DIRECTION.get((_text(r, "Direction") or "").strip().lower()),
}


def field_value(rec: Mapping[str, object], name: str, renames: Mapping[str, str]) -> object:
    """The value a rule's field ``name`` reads in ``rec`` under a target's renames (derived or not)."""
    key = renames.get(name, name)
    derive = DERIVED.get(key)
    return derive(rec) if derive is not None else rec.get(key)


# ---- which events of a (channel, event id) group a category applies to ---------------------------
def _access(rec: Mapping[str, object]) -> int:
    try:
        return int(str(rec.get("AccessMask") or "0").strip(), 16)
    except ValueError:
        return 0


def _object_type(rec: Mapping[str, object]) -> str:
    return str(rec.get("ObjectType") or "").strip().lower()


def _operation(*names: str) -> Callable[[Mapping[str, object]], bool]:
    wanted = {n.lower() for n in names}
    return lambda rec: str(rec.get("OperationType") or "").strip().lower() in wanted


# 4657 OperationType is rendered as text or as its message-table code (NXLog, raw EVTX)
_CREATED = ("New registry value created", "%%1904")
_MODIFIED = ("Existing registry value modified", "%%1905")
_DELETED = ("Registry value deleted", "%%1906")
_WRITE_DATA, _APPEND_DATA, _DELETE = 0x2, 0x4, 0x10000

WHERE: dict[str, Callable[[Mapping[str, object]], bool]] = {
    "registry_event": _operation(*_CREATED, *_MODIFIED, *_DELETED),
    "registry_set": _operation(*_MODIFIED),
    "registry_add": _operation(*_CREATED),
    "registry_delete": _operation(*_DELETED),
    "file_write": lambda r: _object_type(r) == "file" and bool(_access(r) & (_WRITE_DATA | _APPEND_DATA)),
    "file_delete": lambda r: _object_type(r) == "file" and bool(_access(r) & _DELETE),
    "process_object": lambda r: _object_type(r) == "process",
}

# ---- the maps ------------------------------------------------------------------------------------
_GENERIC = {"LogonId": "SubjectLogonId"}
_PROCESS_4688 = {
    "Image": "@new_process_dos",
    "ParentImage": "@parent_process_dos",
    "User": "@process_user",
    "IntegrityLevel": "MandatoryLabel",
    **_GENERIC,
}
_REGISTRY_4657 = {"Image": "@process_dos", "TargetObject": "@registry_path", "Details": "@registry_details"}
_NETWORK_5156 = {
    "Image": "@application_dos",
    "DestinationIp": "DestAddress",
    "DestinationPort": "DestPort",
    "SourceIp": "SourceAddress",
    "Protocol": "@protocol",
    "Initiated": "@initiated",
}
_FILE_4663 = {"Image": "@process_dos", "TargetFilename": "@object_dos", "User": "@subject_user", **_GENERIC}
_PROCESS_4656 = {
    "SourceImage": "@process_dos",
    "TargetImage": "@object_dos",
    "GrantedAccess": "AccessMask",
    "SourceUser": "@subject_user",
}


# Sysmon fields each audit event lacks: a rule filtering on one of them is not run on that event
_HASHES = ("Hashes", "Imphash", "md5", "sha1", "sha256")
_PE = ("OriginalFileName", "Company", "Product", "Description", "FileVersion")
_NO_4688 = frozenset(
    {
        *_HASHES,
        *_PE,
        "CurrentDirectory",
        "ParentCommandLine",
        "ParentUser",
        "ProcessGuid",
        "ParentProcessGuid",
        "LogonGuid",
        "TerminalSessionId",
        "ProcessId",
        "ParentProcessId",
    }
)
_NO_4657 = frozenset({"EventType", "NewName", "User", "ProcessGuid", "ProcessId"})
_NO_5156 = frozenset(
    {
        "DestinationHostname",
        "SourceHostname",
        "DestinationIsIpv6",
        "SourceIsIpv6",
        "User",
        "DestinationPortName",
        "SourcePortName",
        "ProcessGuid",
    }
)
_NO_4663 = frozenset({"CreationUtcTime", "ProcessGuid", "Hashes", "IsExecutable", "Archived"})
_NO_4656 = frozenset(
    {
        "CallTrace",
        "SourceProcessGUID",
        "TargetProcessGUID",
        "TargetUser",
        "SourceThreadId",
        "SourceProcessId",
        "TargetProcessId",
    }
)


class AuditMap:
    """One category's audit-log target: event id, the rows it keeps, renames, fields it lacks."""

    __slots__ = ("event_id", "renames", "strict", "unavailable", "where")

    def __init__(
        self,
        event_id: int,
        renames: Mapping[str, str],
        unavailable: frozenset[str],
        where: str | None = None,
        strict: frozenset[str] = frozenset(),
    ) -> None:
        self.event_id = event_id
        self.renames = dict(renames)
        self.unavailable = unavailable
        self.where = where
        self.strict = strict  # fields whose use anywhere keeps the rule off this event (pySigma fails it)


AUDIT_CATEGORIES: dict[str, AuditMap] = {
    "process_creation": AuditMap(4688, _PROCESS_4688, _NO_4688),
    "registry_event": AuditMap(4657, _REGISTRY_4657, _NO_4657, "registry_event", _NO_4657),
    "registry_set": AuditMap(4657, _REGISTRY_4657, _NO_4657, "registry_set", _NO_4657),
    "registry_add": AuditMap(4657, _REGISTRY_4657, _NO_4657, "registry_add", _NO_4657),
    "registry_delete": AuditMap(4657, _REGISTRY_4657, _NO_4657, "registry_delete", _NO_4657),
    "network_connection": AuditMap(5156, _NETWORK_5156, _NO_5156),
    "file_event": AuditMap(4663, _FILE_4663, _NO_4663, "file_write"),
    "file_delete": AuditMap(4663, _FILE_4663, _NO_4663, "file_delete"),
    "process_access": AuditMap(4656, _PROCESS_4656, _NO_4656, "process_object"),
}
