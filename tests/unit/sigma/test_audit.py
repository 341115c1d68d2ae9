"""Sigma categories on hosts with only the Security channel (4688, 4657, 5156, 4663, 4656)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from healthsec.detect.rules.sigma import SigmaEngine, parse_rules
from healthsec.detect.rules.sigma.audit import process_user, registry_details, registry_path
from healthsec.model import LogRecord, Provenance

SYSMON = "Microsoft-Windows-Sysmon/Operational"


def rec(fields: dict[str, object], event_id: int, channel: str = "Security") -> LogRecord:
    return LogRecord(
        id=f"log-{event_id}",
        ts=datetime(2024, 1, 1, tzinfo=UTC),
        source="t",
        provenance=Provenance(source="t", locator="t.json", record=1),
        host="WS01",
        channel=channel,
        event_id=event_id,
        provider=None,
        fields=fields,
    )


def fires(category: str, detection: str, record: LogRecord) -> bool:
    text = (
        "title: T\nid: 11111111-1111-1111-1111-111111111111\nstatus: test\nlevel: high\n"
        f"logsource:\n    category: {category}\n    product: windows\ndetection:\n{detection}\n"
    )
    rs = parse_rules([("r.yml", text)])
    assert not rs.problems, rs.problems
    return bool(SigmaEngine(rs.rules).match([record]))


PROC_4688 = {
    "NewProcessName": "C:\\Windows\\System32\\cmd.exe",
    "ParentProcessName": "C:\\Windows\\System32\\services.exe",
    "CommandLine": "cmd.exe /c whoami",
    "SubjectUserSid": "S-1-5-18",
    "SubjectUserName": "WS01$",
    "SubjectDomainName": "CORP",
    "TargetUserSid": "S-1-0-0",
    "TargetUserName": "-",
    "MandatoryLabel": "S-1-16-16384",
}


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        ("    sel:\n        Image|endswith: '\\cmd.exe'\n    condition: sel", True),
        ("    sel:\n        ParentImage|endswith: '\\services.exe'\n    condition: sel", True),
        ("    sel:\n        User|contains: ['AUTHORI', 'AUTORI']\n    condition: sel", True),  # SYSTEM by SID
        ("    sel:\n        IntegrityLevel: 'S-1-16-16384'\n    condition: sel", True),
        # an OR with a field 4688 lacks still fires on the field it has
        (
            "    sel:\n        - Image|endswith: '\\cmd.exe'\n        - OriginalFileName: 'Cmd.Exe'\n"
            "    condition: sel",
            True,
        ),
        # 4688 has a ProcessId, but it is the creator's: Sysmon's ProcessId reads as missing there
        ("    sel:\n        ProcessId|exists: true\n    condition: sel", False),
    ],
)
def test_process_creation_reads_security_4688(detection: str, expected: bool) -> None:
    assert fires("process_creation", detection, rec(PROC_4688, 4688)) is expected


def test_a_rule_filtering_on_a_field_4688_lacks_is_kept_off_4688_only() -> None:
    detection = (
        "    sel:\n        Image|endswith: '\\cmd.exe'\n"
        "    filter:\n        OriginalFileName: 'cmd.exe'\n    condition: sel and not filter"
    )
    # on 4688 the filter could never hold, so the rule would fire on every cmd.exe: it is not run there
    assert not fires("process_creation", detection, rec(PROC_4688, 4688))
    sysmon = {"Image": "C:\\x\\cmd.exe", "OriginalFileName": "other.exe"}
    assert fires("process_creation", detection, rec(sysmon, 1, SYSMON))  # Sysmon still runs it


REG = {
    "ObjectName": "\\REGISTRY\\MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run",
    "ObjectValueName": "evil",
    "ProcessName": "C:\\Windows\\System32\\reg.exe",
    "NewValueType": "%%1876",
    "NewValue": "4",
}
RUN_KEY = "    sel:\n        TargetObject|endswith: '\\CurrentVersion\\Run\\evil'\n    condition: sel"


@pytest.mark.parametrize(
    ("category", "operation", "expected"),
    [
        ("registry_set", "%%1905", True),
        ("registry_set", "Existing registry value modified", True),
        ("registry_set", "%%1904", False),  # a created value is registry_add, not registry_set
        ("registry_add", "%%1904", True),
        ("registry_event", "%%1904", True),
        ("registry_event", "%%1905", True),
        ("registry_delete", "%%1906", True),
        ("registry_delete", "%%1905", False),
    ],
)
def test_registry_categories_read_4657_by_operation_type(
    category: str, operation: str, expected: bool
) -> None:
    assert fires(category, RUN_KEY, rec(REG | {"OperationType": operation}, 4657)) is expected


def test_registry_fields_in_sysmon_spelling_and_strict_fields() -> None:
    assert registry_path(REG) == "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\evil"
    assert registry_details(REG) == "DWORD (0x00000004)"
    modified = rec(REG | {"OperationType": "%%1905"}, 4657)
    details = (
        "    sel:\n        Details: 'DWORD (0x00000004)'\n        Image|endswith: '\\reg.exe'\n"
        "    condition: sel"
    )
    assert fires("registry_set", details, modified)
    # 4657 has no EventType: pySigma's audit pipeline fails such rules, so they never run on 4657
    typed = (
        "    sel:\n        EventType: 'SetValue'\n        TargetObject|contains: '\\Run'\n    condition: sel"
    )
    text = (
        "title: T\nid: 11111111-1111-1111-1111-111111111111\nstatus: test\nlevel: high\n"
        f"logsource:\n    category: registry_set\n    product: windows\ndetection:\n{typed}\n"
    )
    (compiled,) = parse_rules([("r.yml", text)]).rules
    assert [sorted(t.event_ids or ()) for t in compiled.targets] == [[13]]


def test_network_connection_reads_wfp_5156() -> None:
    wfp = {
        "Application": "\\device\\harddiskvolume4\\windows\\system32\\rundll32.exe",
        "Direction": "%%14593",
        "DestAddress": "198.51.100.7",
        "DestPort": "4444",
        "Protocol": "6",
    }
    det = (
        "    sel:\n        Image|startswith: 'C:\\Windows\\'\n        Image|endswith: '\\rundll32.exe'\n"
        "        Initiated: 'true'\n        Protocol: 'tcp'\n        DestinationPort: 4444\n"
        "    condition: sel"
    )
    assert fires("network_connection", det, rec(wfp, 5156))
    assert not fires("network_connection", det, rec(wfp | {"Direction": "%%14592"}, 5156))  # inbound


def test_file_event_and_file_delete_read_4663_by_access_mask() -> None:
    obj = {
        "ObjectType": "File",
        "ObjectName": "C:\\Users\\a\\AppData\\Roaming\\Microsoft\\Windows\\Start Menu\\Programs"
        "\\Startup\\x.lnk",
        "ProcessName": "C:\\Windows\\explorer.exe",
    }
    det = "    sel:\n        TargetFilename|contains: '\\Start Menu\\Programs\\Startup\\'\n    condition: sel"
    assert fires("file_event", det, rec(obj | {"AccessMask": "0x2"}, 4663))  # WriteData
    assert not fires("file_event", det, rec(obj | {"AccessMask": "0x1"}, 4663))  # a read is not a write
    assert fires("file_delete", det, rec(obj | {"AccessMask": "0x10000"}, 4663))  # DELETE
    assert not fires("file_event", det, rec(obj | {"AccessMask": "0x2", "ObjectType": "Key"}, 4663))


def test_process_access_reads_4656_and_pipes_stay_sysmon_only() -> None:
    handle = {
        "ObjectType": "Process",
        "ObjectName": "\\Device\\HarddiskVolume2\\Windows\\System32\\lsass.exe",
        "ProcessName": "C:\\Users\\a\\mimi.exe",
        "AccessMask": "0x1010",
    }
    det = (
        "    sel:\n        TargetImage|endswith: '\\lsass.exe'\n        GrantedAccess: '0x1010'\n"
        "    condition: sel"
    )
    assert fires("process_access", det, rec(handle, 4656))
    assert not fires("process_access", det, rec(handle | {"ObjectType": "File"}, 4656))
    # 5145 is a client opening a pipe over SMB (remote service control opens \\svcctl), not a pipe
    # being created: pipe_created rules stay on Sysmon 17/18
    share = {"ShareName": "\\\\*\\IPC$", "RelativeTargetName": "svcctl"}
    pipe = "    sel:\n        PipeName: '\\svcctl'\n    condition: sel"
    assert not fires("pipe_created", pipe, rec(share, 5145))
    assert fires("pipe_created", pipe, rec({"PipeName": "\\svcctl"}, 17, SYSMON))


def test_process_user_prefers_the_target_account() -> None:
    assert process_user(PROC_4688) == "NT AUTHORITY\\SYSTEM"
    other = PROC_4688 | {"TargetUserSid": "S-1-5-21-1", "TargetUserName": "alice", "TargetDomainName": "CORP"}
    assert process_user(other) == "CORP\\alice"
    assert process_user({}) is None
