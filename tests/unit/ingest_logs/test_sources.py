"""Log ingestion: bad records become ParseErrors naming file and record; every format keeps its fields."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

from healthsec.ingest.logs import LogFileSource
from healthsec.model import LogRecord, ParseError

OTRF = "otrf-security-datasets/datasets/atomic"
REGRESSION_EVTX = (
    "sigma-rules/regression_data/rules/windows/process_creation/proc_creation_win_curl_custom_user_agent/"
    "85de1f22-d189-44e4-8239-dc276b45379b.evtx.gz"
)


def split(items: list[LogRecord | ParseError] | list[object]) -> tuple[list[LogRecord], list[ParseError]]:
    return [i for i in items if isinstance(i, LogRecord)], [i for i in items if isinstance(i, ParseError)]


def test_truncated_json_line_is_reported_and_the_rest_kept(tmp_path: Path) -> None:
    good = {
        "EventID": 1,
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Hostname": "WS1",
        "TimeCreated": "2020-10-18 10:56:18.799",
        "Image": "C:\\a.exe",
    }
    path = tmp_path / "x.json"
    path.write_text(json.dumps(good) + "\n" + json.dumps(good)[:30] + "\n" + json.dumps(good) + "\n")
    recs, errs = split(list(LogFileSource(path).read()))
    assert len(recs) == 2 and len(errs) == 1
    assert errs[0].record == 2 and errs[0].locator == str(path) and "invalid JSON" in errs[0].reason
    assert recs[1].provenance is not None and recs[1].provenance.record == 3
    assert recs[0].fields["Image"] == "C:\\a.exe" and recs[0].host == "WS1" and recs[0].event_id == 1
    assert recs[0].ts.isoformat() == "2020-10-18T10:56:18.799000+00:00"


def test_otrf_zip_and_targz_read_completely(shared_data: Path) -> None:
    zpath = shared_data / OTRF / "windows/credential_access/host/cmd_lsass_memory_dumpert_syscalls.zip"
    recs, errs = split(list(LogFileSource(zpath).read()))
    with zipfile.ZipFile(zpath) as zf:
        members = [m for m in zf.namelist() if m.endswith(".json")]
        lines = sum(1 for m in members for ln in zf.read(m).splitlines() if ln.strip())
    assert len(recs) == lines and errs == []
    assert {r.channel for r in recs} >= {"Security", "Microsoft-Windows-Sysmon/Operational"}
    tpath = shared_data / OTRF / "windows/defense_evasion/host/empire_wdigest_downgrade.tar.gz"
    trecs, terrs = split(list(LogFileSource(tpath).read()))  # GNU tar fails on this archive
    assert terrs == [] and len(trecs) > 1000
    # Winlogbeat 6 layout: event_data held as a Python-literal string, read as data
    ps = [r for r in trecs if r.event_id == 4103]
    assert ps and "Payload" in ps[0].fields and ps[0].channel == "Microsoft-Windows-PowerShell/Operational"


def test_evtx_and_corrupt_evtx(shared_data: Path, tmp_path: Path) -> None:
    recs, errs = split(list(LogFileSource(shared_data / REGRESSION_EVTX).read()))
    assert errs == [] and len(recs) == 1
    r = recs[0]
    assert (r.event_id, r.channel, r.host) == (1, "Microsoft-Windows-Sysmon/Operational", "swachchhanda")
    assert str(r.fields["Image"]).lower().endswith("curl.exe") and r.fields["EventID"] == 1
    data = bytearray(gzip.decompress((shared_data / REGRESSION_EVTX).read_bytes()))
    data[0x1000 + 600 : 0x1000 + 1400] = b"\xff" * 800  # smash the first chunk's records
    bad = tmp_path / "bad.evtx"
    bad.write_bytes(bytes(data))
    _, berrs = split(list(LogFileSource(bad).read()))
    assert berrs and all(e.locator == str(bad) for e in berrs)
    not_evtx = tmp_path / "junk.evtx"
    not_evtx.write_bytes(b"\x00garbage" * 10)
    _, jerrs = split(list(LogFileSource(not_evtx).read()))
    assert len(jerrs) == 1 and jerrs[0].locator == str(not_evtx)


def test_winlogbeat_ecs_layout(tmp_path: Path) -> None:
    doc = {
        "@timestamp": "2024-03-01T10:00:00.000Z",
        "host": {"name": "srv1"},
        "winlog": {
            "channel": "Security",
            "event_id": 4625,
            "provider_name": "Microsoft-Windows-Security-Auditing",
            "computer_name": "srv1.corp",
            "event_data": {"TargetUserName": "bob", "IpAddress": "10.0.0.9"},
        },
    }
    path = tmp_path / "wlb.json"
    path.write_text(json.dumps(doc) + "\n")
    (r,) = list(LogFileSource(path).read())
    assert isinstance(r, LogRecord)
    assert (r.channel, r.event_id, r.host) == ("Security", 4625, "srv1.corp")
    assert r.fields["TargetUserName"] == "bob" and r.fields["IpAddress"] == "10.0.0.9"


def test_syslog_and_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "auth.log"
    path.write_text(
        "Mar  3 10:01:02 web1 sshd[4242]: Failed password for root from 10.0.0.5 port 22 ssh2\n"
        "this is not syslog\n"
        "<34>1 2024-03-03T10:01:05Z web1 sudo - - alice : TTY=pts/0 ; COMMAND=/bin/sh\n"
    )
    recs, errs = split(list(LogFileSource(path, year=2024).read()))
    assert len(recs) == 2 and len(errs) == 1 and errs[0].record == 2
    assert recs[0].provider == "sshd" and recs[0].fields["pid"] == "4242" and recs[0].host == "web1"
    assert recs[0].ts.isoformat() == "2024-03-03T10:01:02+00:00"
    assert recs[1].provider == "sudo"


def test_auditd_from_otrf_linux(shared_data: Path) -> None:
    path = shared_data / OTRF / "linux/discovery/host/sh_arp_cache.zip"
    recs, errs = split(list(LogFileSource(path).read()))
    assert errs == [] and len(recs) == 12
    execve = [r for r in recs if r.fields["type"] == "EXECVE"]
    assert (execve[0].fields["a0"], execve[0].fields["a1"], execve[0].channel) == ("arp", "-a", "auditd")


def test_zeek_json_and_tsv(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "otrf-security-datasets/datasets/compound/apt29/day1/zeek/combined_zeek.log.gz"
    recs, errs = split(list(LogFileSource(path).read()))
    assert errs == [] and len(recs) == 2140  # SOURCE.md: 2,140 records on day 1
    conn = [r for r in recs if r.channel == "zeek:conn"]
    assert len(conn) == 613 and conn[0].fields["id.orig_h"] == conn[0].fields["id_orig_h"]
    tsv = tmp_path / "dns.log"
    tsv.write_text(
        "#separator \\x09\n#path\tdns\n#fields\tts\tuid\tid.orig_h\tquery\n"
        "1588205199.8\tC1\t10.0.1.6\texample.org\n1588205200.1\tC2\t-\n"
    )
    trecs, terrs = split(list(LogFileSource(tsv).read()))
    assert len(trecs) == 1 and trecs[0].channel == "zeek:dns" and trecs[0].fields["query"] == "example.org"
    assert len(terrs) == 1 and terrs[0].record == 5
