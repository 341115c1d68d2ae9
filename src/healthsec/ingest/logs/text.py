"""Linux syslog (RFC 3164 / 5424), auditd and Zeek lines as LogRecords that keep every original field."""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime

from healthsec.ingest.logs.windows import RecordError, parse_time
from healthsec.model import LogRecord, Provenance, stable_id

_RFC3164 = re.compile(
    r"^(?:<(?P<pri>\d{1,3})>)?(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) "
    r"(?P<prog>[^:\[\s]+)(?:\[(?P<pid>\d+)\])?: ?(?P<msg>.*)$"
)
_RFC5424 = re.compile(
    r"^(?:<(?P<pri>\d{1,3})>\d? ?)?(?P<ts>\d{4}-\d\d-\d\dT\S+) (?P<host>\S+) "
    r"(?P<prog>[^:\[\s]+)(?:\[(?P<pid>\d+)\])?:? ?(?P<msg>.*)$"
)
_AUDIT_HEAD = re.compile(
    r"^(?:node=(?P<node>\S+) )?type=(?P<type>\S+) msg=audit\((?P<ts>[\d.]+):(?P<serial>\d+)\): ?"
)


def _record(
    *,
    source: str,
    locator: str,
    record: int,
    ts: datetime,
    channel: str,
    host: str | None,
    provider: str | None,
    fields: dict[str, object],
    message: str | None,
) -> LogRecord:
    return LogRecord(
        id=stable_id("log", source, locator, record),
        ts=ts,
        source=source,
        provenance=Provenance(source=source, locator=locator, record=record),
        host=host,
        channel=channel,
        event_id=None,
        provider=provider,
        fields=fields,
        message=message,
    )


def parse_syslog(line: str, *, source: str, locator: str, record: int, year: int) -> LogRecord:
    """One syslog line; RFC 3164 lines carry no year, so the caller supplies it."""
    m = _RFC5424.match(line)
    ts: datetime | None
    if m:
        ts = parse_time(m["ts"])
    else:
        m = _RFC3164.match(line)
        if not m:
            raise RecordError("not a syslog line (RFC 3164 or 5424)")
        ts = datetime.strptime(f"{year} {m['ts']}", "%Y %b %d %H:%M:%S").replace(tzinfo=UTC)
    if ts is None:
        raise RecordError(f"bad timestamp {m['ts']!r}")
    fields: dict[str, object] = {
        "host": m["host"],
        "program": m["prog"],
        "pid": m["pid"],
        "message": m["msg"],
    }
    if m["pri"] is not None:
        pri = int(m["pri"])
        fields["facility"], fields["severity"] = pri // 8, pri % 8
    return _record(
        source=source,
        locator=locator,
        record=record,
        ts=ts,
        channel="syslog",
        host=m["host"],
        provider=m["prog"],
        fields=fields,
        message=m["msg"],
    )


def parse_auditd(line: str, *, source: str, locator: str, record: int) -> LogRecord:
    """One auditd line: ``type=... msg=audit(ts:serial): key=value ...`` (quoted values unquoted)."""
    m = _AUDIT_HEAD.match(line)
    if not m:
        raise RecordError("not an auditd line (type=... msg=audit(...))")
    fields: dict[str, object] = {"type": m["type"], "serial": m["serial"]}
    if m["node"]:
        fields["node"] = m["node"]
    rest = line[m.end() :]
    try:
        tokens = shlex.split(rest.replace("'", "\u2019"), posix=True)
    except ValueError as exc:
        raise RecordError(f"unbalanced quotes: {exc}") from None
    for tok in tokens:
        key, sep, value = tok.partition("=")
        if sep:
            fields[key] = value.replace("\u2019", "'")
    ts = datetime.fromtimestamp(float(m["ts"]), UTC)
    return _record(
        source=source,
        locator=locator,
        record=record,
        ts=ts,
        channel="auditd",
        host=m["node"],
        provider="auditd",
        fields=fields,
        message=rest,
    )


def zeek_record(
    doc: dict[str, object], *, stream: str | None, source: str, locator: str, record: int
) -> LogRecord:
    """One Zeek record (JSON or TSV); ``@stream`` / ``_path`` names the Zeek log (conn, dns, http ...)."""
    stream = stream or str(doc.get("@stream") or doc.get("_path") or "") or None
    if stream is None:
        raise RecordError("Zeek record without a log name (@stream / _path)")
    raw_ts = doc.get("ts")
    try:  # Zeek writes epoch seconds (a number in JSON, text in TSV) unless ISO timestamps are configured
        ts = parse_time(float(str(raw_ts))) if raw_ts is not None else parse_time(doc.get("@timestamp"))
    except ValueError:
        ts = parse_time(raw_ts)
    if ts is None:
        what = "no 'ts' field" if raw_ts is None else f"bad ts {raw_ts!r}"
        raise RecordError(f"Zeek {stream} record: {what}")
    fields = dict(doc)
    for key in list(fields):  # some exporters flatten id.orig_h to id_orig_h; Sigma uses the dotted name
        if key.startswith("id_") and key.count("_") == 2:
            fields.setdefault("id." + key[3:], fields[key])
    sensor = doc.get("@system")
    return _record(
        source=source,
        locator=locator,
        record=record,
        ts=ts,
        channel=f"zeek:{stream}",
        host=str(sensor) if sensor else None,
        provider="zeek",
        fields=fields,
        message=None,
    )


def zeek_tsv_fields(header_lines: list[str]) -> tuple[list[str], str | None]:
    """Field names and log name from a Zeek TSV header (``#fields`` / ``#path``)."""
    names: list[str] = []
    path: str | None = None
    for h in header_lines:
        parts = h.rstrip("\n").split("\t")
        if parts[0] == "#fields":
            names = parts[1:]
        elif parts[0] == "#path" and len(parts) > 1:
            path = parts[1]
    return names, path


def zeek_tsv_row(line: str, names: list[str]) -> dict[str, object]:
    """A TSV row as a dict; ``-`` (unset) becomes None, ``(empty)`` the empty string."""
    values = line.rstrip("\n").split("\t")
    if len(values) != len(names):
        raise RecordError(f"expected {len(names)} tab-separated values, got {len(values)}")
    out: dict[str, object] = {}
    for k, v in zip(names, values, strict=True):
        out[k] = None if v == "-" else "" if v == "(empty)" else v
    return out
