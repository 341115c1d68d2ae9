"""The native Sigma engine: modifiers, conditions, null/missing fields, case rules, logsources."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from healthsec.detect.rules.sigma import SigmaDetector, SigmaEngine, attack_tags, parse_rules
from healthsec.model import EntityKind, EntityRole, LogRecord, Provenance

SYSMON = "Microsoft-Windows-Sysmon/Operational"


def rec(fields: dict[str, object], *, event_id: int = 1, channel: str = SYSMON, n: int = 1) -> LogRecord:
    return LogRecord(
        id=f"log-{n}",
        ts=datetime(2024, 1, 1, 12, 0, n % 60, tzinfo=UTC),
        source="t",
        provenance=Provenance(source="t", locator="test.json", record=n),
        host="WS01",
        channel=channel,
        event_id=event_id,
        provider=None,
        fields=fields,
    )


def rule(detection: str, logsource: str = "    category: process_creation\n    product: windows") -> str:
    return (
        "title: T\nid: 11111111-1111-1111-1111-111111111111\nstatus: test\nlevel: high\n"
        "tags:\n    - attack.execution\n    - attack.t1059.001\n"
        f"logsource:\n{logsource}\ndetection:\n{detection}\n"
    )


def one(item: str) -> str:
    """A detection with one selection holding ``item`` (``Field|modifier: value``)."""
    return f"    sel:\n        {item}\n    condition: sel"


def fires(detection: str, fields: dict[str, object], **kw: object) -> bool:
    rs = parse_rules([("r.yml", rule(detection))])
    assert not rs.problems, rs.problems
    return bool(SigmaEngine(rs.rules).match([rec(fields, **kw)]))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("detection", "fields", "expected"),
    [
        (one("Image|endswith: '\\cmd.exe'"), {"Image": "C:\\W\\CMD.EXE"}, True),
        (one("Image|endswith: '\\cmd.exe'"), {"Image": "C:\\cmd.exe.bak"}, False),
        (one("CommandLine|contains: 'ENC'"), {"CommandLine": "a -enc b"}, True),
        (one("CommandLine|startswith: 'net '"), {"CommandLine": "NET user"}, True),
        (one("CommandLine|contains|all: ['a1', 'b2']"), {"CommandLine": "b2 a1"}, True),
        (one("CommandLine|contains|all: ['a1', 'b2']"), {"CommandLine": "a1"}, False),
        (one("CommandLine: 'x*y?z'"), {"CommandLine": "X..Y1Z"}, True),
        (one("CommandLine: 'x*y?z'"), {"CommandLine": "xy12z"}, False),
        (one("CommandLine|re: 'a[0-9]+b'"), {"CommandLine": "za12b"}, True),
        (one("CommandLine|re: 'A[0-9]+b'"), {"CommandLine": "za12b"}, False),
        (one("CommandLine|re|i: 'A[0-9]+b'"), {"CommandLine": "za12b"}, True),
        (one("CommandLine|cased: 'Abc'"), {"CommandLine": "abc"}, False),
        (one("CommandLine|cased: 'Abc'"), {"CommandLine": "Abc"}, True),
        (one("DestinationIp|cidr: '10.0.0.0/8'"), {"DestinationIp": "10.2.3.4"}, True),
        (one("DestinationIp|cidr: '10.0.0.0/8'"), {"DestinationIp": "11.2.3.4"}, False),
        (one("CommandLine|base64: 'whoami'"), {"CommandLine": "d2hvYW1p"}, True),
        (one("CommandLine|base64offset|contains: 'http'"), {"CommandLine": "-e aHR0cDovL3g="}, True),
        (one("CommandLine|windash|contains: ' -enc '"), {"CommandLine": "p /enc x"}, True),
        (one("CommandLine|wide|base64offset|contains: 'ping'"), {"CommandLine": "cABpAG4AZwA="}, True),
        (one("ProcessId|gt: 100"), {"ProcessId": "4460"}, True),
        (one("ProcessId|lte: 100"), {"ProcessId": 4460}, False),
        (one("ParentImage|exists: true"), {"Image": "a"}, False),
        (one("ParentImage|exists: false"), {"Image": "a"}, True),
        (one("ParentImage: null"), {"Image": "a"}, True),
        (one("ParentImage: null"), {"ParentImage": "b"}, False),
        (one("Image|fieldref: ParentImage"), {"Image": "A", "ParentImage": "a"}, True),
        (one("Image|fieldref: ParentImage"), {"Image": "A", "ParentImage": "b"}, False),
        (one("LogonType: 3"), {"LogonType": "3"}, True),
        ("    keywords:\n        - 'mimikatz'\n    condition: keywords", {"Payload": "x MimiKatz y"}, True),
    ],
)
def test_modifiers(detection: str, fields: dict[str, object], expected: bool) -> None:
    assert fires(detection, fields) is expected


CONDITIONS = """    selection_a:
        Image|endswith: '\\a.exe'
    selection_b:
        Image|endswith: '\\b.exe'
    filter_main:
        User|contains: 'SYSTEM'
    condition: 1 of selection_* and not filter_main"""


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"Image": "c:\\a.exe", "User": "bob"}, True),
        ({"Image": "c:\\b.exe"}, True),  # the filter's field is missing: the filter does not match
        ({"Image": "c:\\b.exe", "User": "NT AUTHORITY\\SYSTEM"}, False),
        ({"Image": "c:\\c.exe"}, False),
        ({}, False),
    ],
)
def test_condition_selectors_and_not(fields: dict[str, object], expected: bool) -> None:
    assert fires(CONDITIONS, fields) is expected


def test_all_of_them_and_parentheses() -> None:
    det = (
        "    s1:\n        Image|endswith: 'x.exe'\n    s2:\n        CommandLine|contains: 'q'\n"
        "    s3:\n        User: 'u'\n    condition: (s1 and s2) or (s3 and not s1)"
    )
    assert fires(det, {"Image": "x.exe", "CommandLine": "aq"})
    assert not fires(det, {"Image": "x.exe", "User": "u"})
    assert fires(det, {"Image": "y.exe", "User": "U"})
    det_all = (
        "    s1:\n        Image|endswith: 'x.exe'\n    s2:\n        CommandLine|contains: 'q'\n"
        "    condition: all of them"
    )
    assert fires(det_all, {"Image": "x.exe", "CommandLine": "q"})
    assert not fires(det_all, {"Image": "x.exe"})


def test_logsource_routes_sysmon_and_security_4688_with_renames() -> None:
    rs = parse_rules([("r.yml", rule(one("Image|endswith: '\\evil.exe'")))])
    engine = SigmaEngine(rs.rules)
    records = [
        rec({"Image": "c:\\evil.exe"}, n=1),
        rec({"NewProcessName": "c:\\evil.exe"}, channel="Security", event_id=4688, n=2),
        rec({"Image": "c:\\evil.exe"}, event_id=3, n=3),  # network connection: wrong event id
        rec({"Image": "c:\\evil.exe"}, channel="Security", event_id=4624, n=4),
    ]
    assert [h.index for h in engine.match(records)] == [0, 1]


def test_unsupported_and_broken_rules_are_reported_with_reason() -> None:
    broken = "title: X\nlogsource:\n  product: windows\ndetection:\n  sel:\n    a: [1\n  condition: sel\n"
    odd = rule(one("a: 1"), "    product: windows\n    category: file_access")
    rs = parse_rules([("broken.yml", broken), ("odd.yml", odd)])
    assert rs.rules == []
    reasons = {p.locator.split(":")[0]: (p.kind, p.reason) for p in rs.problems}
    assert reasons["broken.yml"][0] == "error"
    assert reasons["odd.yml"] == ("unsupported", "windows category 'file_access' has no event mapping")


def test_detector_alert_carries_rule_tags_entities_and_explanation() -> None:
    det = SigmaDetector.from_texts([("r.yml", rule(one("CommandLine|contains: 'mimi'")))])
    r = rec({"CommandLine": "run mimi now", "User": "CORP\\alice", "SourceIp": "10.1.1.5"})
    alerts = det.detect([r])
    assert len(alerts) == 1
    a = alerts[0]
    assert a.evidence == (r.id,)
    assert a.techniques == ("T1059.001",) and a.tactics == ("TA0002",)
    assert a.severity.label == "high"
    assert "CommandLine=run mimi now" in a.explanation
    assert a.features["record"] == "test.json#1"
    kinds = {(e.kind, e.value, e.role) for e in a.entities}
    assert (EntityKind.HOST, "WS01", EntityRole.ACTOR) in kinds
    assert (EntityKind.USER, "CORP\\alice", EntityRole.ACTOR) in kinds
    assert (EntityKind.IP, "10.1.1.5", EntityRole.ACTOR) in kinds
    assert det.detect([r])[0].id == a.id  # deterministic ids


def test_event_count_correlation() -> None:
    base = rule(one("EventID: 4625"), "    product: windows\n    service: security")
    base = base.replace("title: T\n", "title: T\nname: failed_logon\n")
    corr = (
        "title: Many failures\nid: 22222222-2222-2222-2222-222222222222\nlevel: high\n"
        "correlation:\n    type: event_count\n    rules:\n        - failed_logon\n    group-by:\n"
        "        - TargetUserName\n    timespan: 1m\n    condition:\n        gte: 3\n"
    )
    det = SigmaDetector.from_texts([("c.yml", base + "---\n" + corr)])
    assert not det.ruleset.problems and len(det.ruleset.correlations) == 1
    recs = [
        rec(
            {"EventID": 4625, "TargetUserName": "bob" if i < 3 else "eve"},
            channel="Security",
            event_id=4625,
            n=i + 1,
        )
        for i in range(5)
    ]
    alerts = [a for a in det.detect(recs) if a.title == "Many failures"]
    assert len(alerts) == 1 and len(alerts[0].evidence) == 3


def test_product_windows_only_rule_covers_every_windows_channel() -> None:
    rs = parse_rules(
        [
            (
                "k.yml",
                rule(
                    "    keywords:\n        - 'sekurlsa::'\n    condition: keywords", "    product: windows"
                ),
            )
        ]
    )
    assert not rs.problems
    engine = SigmaEngine(rs.rules)
    records = [
        rec({"Payload": "invoke sekurlsa::logonpasswords"}, channel="Windows PowerShell", event_id=800, n=1),
        rec({"Message": "SEKURLSA::pth"}, channel="Security", event_id=4688, n=2),
        rec({"query": "sekurlsa::x"}, channel="zeek:dns", event_id=None, n=3),  # not a Windows log
        rec({"Payload": "benign"}, channel="Windows PowerShell", event_id=800, n=4),
    ]
    assert [h.index for h in engine.match(records)] == [0, 1]


def test_logon_alert_names_the_target_account_not_the_machine_subject() -> None:
    det = SigmaDetector.from_texts(
        [("r.yml", rule(one("EventID: 4625"), "    product: windows\n    service: security"))]
    )
    r = rec(
        {"EventID": 4625, "SubjectUserName": "WS01$", "TargetUserName": "dr.house", "IpAddress": "10.9.8.7"},
        channel="Security",
        event_id=4625,
    )
    (a,) = det.detect([r])
    users = [e.value for e in a.entities if e.kind is EntityKind.USER]
    assert users == ["dr.house"]
    assert any(e.kind is EntityKind.IP and e.value == "10.9.8.7" for e in a.entities)


def test_attack_tags_include_v19_tactics() -> None:
    techniques, tactics = attack_tags(
        [
            "attack.stealth",
            "attack.defense-impairment",
            "attack.t1685.001",
            "attack.defense-evasion",
            "car.2022-03-001",
            "attack.T1112",
        ]
    )
    assert techniques == ("T1685.001", "T1112")
    assert tactics == ("TA0005", "TA0112")


@pytest.mark.parametrize(
    ("keyword", "text", "expected"),
    [
        ("sekurlsa::", "Invoke SeKuRlSa::LogonPasswords", True),  # ASCII: case folded in the automaton
        ("sekurlsa::", "sekurlsa:", False),
        ("ÄRZTE", "liste der ärzte", True),  # non-ASCII keyword: searched in lower-cased text
    ],
)
def test_keyword_search_over_a_large_batch_folds_case_like_a_small_one(
    keyword: str, text: str, expected: bool
) -> None:
    """Above the shared-index size the joined record text is searched with ASCII case folded in the
    automaton (not lower-cased first); the decisions must be those of the small-batch path."""
    detection = f"    keywords:\n        - '{keyword}'\n    condition: keywords"
    rs = parse_rules([("k.yml", rule(detection, "    product: windows"))])
    assert not rs.problems
    engine = SigmaEngine(rs.rules)
    payloads = [f"benign {i}" for i in range(600)]
    payloads[5] = text
    records = [
        rec(
            {"Payload": p, "Count": i, "Flag": i % 2 == 0},
            channel="Windows PowerShell",
            event_id=800,
            n=i + 1,
        )
        for i, p in enumerate(payloads)
    ]
    big = [h.index for h in engine.match(records)]
    small = [i for i, r in enumerate(records) if engine.match([r])]
    assert big == small == ([5] if expected else [])


def test_matching_ahead_gives_the_alerts_of_matching_bucket_by_bucket() -> None:
    det = SigmaDetector.from_texts([("r.yml", rule(one("CommandLine|contains: 'mimi'")))])
    recs = [rec({"CommandLine": "run mimi" if n % 3 == 0 else "dir", "User": "a"}, n=n) for n in range(12)]
    plain = det.detect(recs[:6]) + det.detect(recs[6:])
    det.prepare(recs[:9])  # the last three records were not seen ahead: matched as before
    ahead = det.detect(recs[:6]) + det.detect(recs[6:])
    assert ahead == plain and len(plain) == 4
    det.prepare([])
    assert det.detect(recs[:6]) == plain[:2]


@pytest.mark.parametrize(
    ("keyword", "text", "expected"),
    [
        ("mimi*katz", "run mimi-katz.exe now", True),  # Sigma keywords are 'contains' searches
        ("mimi*katz", "katz before mimi", False),
        ("power?hell", "a PowerShell b", True),
        ("power?hell", "a powerhell b", False),  # '?' is exactly one character
        ("ntds*", "copy of NTDS.dit", True),  # a trailing wildcard does not anchor at the start
        ("*.dit", "ntds.dit was copied", True),  # nor a leading one at the end
    ],
)
@pytest.mark.parametrize("size", [1, 600])
def test_keyword_with_wildcards_matches_inside_the_record_like_pysigma(
    keyword: str, text: str, expected: bool, size: int
) -> None:
    """pySigma's backends search a keyword anywhere in the event (SQLite: ``LIKE '%mimi%katz%'``):
    wildcards match within the text, so a wildcard never anchors a keyword to the whole record."""
    detection = f"    keywords:\n        - '{keyword}'\n    condition: keywords"
    rs = parse_rules([("k.yml", rule(detection, "    product: windows"))])
    assert not rs.problems
    engine = SigmaEngine(rs.rules)
    payloads = [f"benign {i}" for i in range(size)]
    payloads[-1] = text
    records = [
        rec({"Host": "WS01", "Payload": p, "Count": i}, channel="Windows PowerShell", event_id=800, n=i + 1)
        for i, p in enumerate(payloads)
    ]
    assert [h.index for h in engine.match(records)] == ([size - 1] if expected else [])
