"""Turn one Windows event rendered as a dict (EVTX JSON, OTRF flat JSON, Winlogbeat/ECS) into a LogRecord."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from healthsec.model import LogRecord, Provenance, stable_id


class RecordError(ValueError):
    """A record that parsed as JSON but is not a log record we can place (reason in the message)."""


def parse_time(value: object) -> datetime | None:
    """Parse the timestamp spellings found in Windows exports; naive times are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), UTC)
    text = str(value).strip()
    if not text:
        return None
    text = text.replace(" UTC", "").replace("Z", "+00:00")
    if " " in text and "T" not in text:
        text = text.replace(" ", "T", 1)
    # fromisoformat (3.11) accepts at most 6 fraction digits; EVTX renders 7
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        tail = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{tail}"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _attr(node: object, name: str) -> object:
    """Read ``node[#attributes][name]`` from the EVTX JSON rendering, else the node itself."""
    if isinstance(node, Mapping):
        attrs = node.get("#attributes")
        if isinstance(attrs, Mapping):
            return attrs.get(name)
        return node.get("#text")
    return node


def _as_int(value: object) -> int | None:
    if isinstance(value, Mapping):
        value = value.get("#text", value.get("value"))
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _flatten_data(node: object, out: dict[str, object]) -> None:
    """Flatten an EventData/UserData node: named values become fields by name (as Sigma expects)."""
    if not isinstance(node, Mapping):
        return
    for key, value in node.items():
        if key == "#attributes":
            continue
        if key == "Data" and isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, Mapping) and "#attributes" in item:
                    name = _attr(item, "Name")
                    _put(out, str(name) if name else f"Data{i}", item.get("#text"))
                else:
                    out[f"Data{i}" if len(value) > 1 else "Data"] = item
        elif isinstance(value, Mapping) and key != "Data":
            # UserData wraps its fields in one element; keep them by their own names
            _flatten_data(value, out)
        else:
            _put(out, key, value)


def _put(out: dict[str, object], key: str, value: object) -> None:
    """Store a field; a name with spaces ('Source Name') also gets the Sigma spelling ('SourceName')."""
    out[key] = value
    if " " in key:
        out.setdefault(key.replace(" ", ""), value)


def _maybe_literal(value: object) -> object:
    """Some Winlogbeat 6 exports hold event_data as a Python-literal string; read it as data, never code."""
    if isinstance(value, str) and value.startswith("{"):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return {"event_data": value}
    return value


def from_evtx_json(doc: Mapping[str, Any]) -> tuple[dict[str, object], dict[str, object]]:
    """Split the EVTX JSON rendering into (system, fields)."""
    event = doc.get("Event")
    if not isinstance(event, Mapping):
        raise RecordError("no 'Event' element")
    system = event.get("System")
    if not isinstance(system, Mapping):
        raise RecordError("no 'Event.System' element")
    fields: dict[str, object] = {}
    _flatten_data(event.get("EventData"), fields)
    _flatten_data(event.get("UserData"), fields)
    provider = _attr(system.get("Provider"), "Name")
    sysinfo: dict[str, object] = {
        "EventID": _as_int(system.get("EventID")),
        "Channel": system.get("Channel"),
        "Provider_Name": provider,
        "Computer": system.get("Computer"),
        "TimeCreated": _attr(system.get("TimeCreated"), "SystemTime"),
        "EventRecordID": system.get("EventRecordID"),
        "Level": system.get("Level"),
        "Task": system.get("Task"),
    }
    return sysinfo, fields


def to_log_record(
    doc: Mapping[str, Any], *, source: str, locator: str, record: int, fallback_ts: datetime | None = None
) -> LogRecord:
    """Build a LogRecord from any of the three Windows JSON layouts; the original fields are kept."""
    fields: dict[str, object]
    if "Event" in doc and isinstance(doc.get("Event"), Mapping):
        system, fields = from_evtx_json(doc)
        channel, event_id = system["Channel"], system["EventID"]
        provider, host, ts_raw = system["Provider_Name"], system["Computer"], system["TimeCreated"]
        for key in ("EventID", "Channel", "Provider_Name", "Computer"):
            fields.setdefault(key, system[key])
    elif isinstance(doc.get("winlog"), Mapping):  # Winlogbeat / ECS
        winlog = doc["winlog"]
        fields = {}
        _flatten_data(winlog.get("event_data"), fields)
        _flatten_data(winlog.get("user_data"), fields)
        channel, event_id = winlog.get("channel"), _as_int(winlog.get("event_id"))
        provider = winlog.get("provider_name")
        hostinfo = doc.get("host")
        host = winlog.get("computer_name")
        if host is None and isinstance(hostinfo, Mapping):
            host = hostinfo.get("name")
        ts_raw = doc.get("@timestamp")
        fields.update({"EventID": event_id, "Channel": channel, "Provider_Name": provider, "Computer": host})
        for key, value in doc.items():
            if key != "winlog":
                fields.setdefault(key, value)
    elif "log_name" in doc and "event_id" in doc:  # Winlogbeat 6 layout (older OTRF archives)
        fields = {}
        _flatten_data(_maybe_literal(doc.get("event_data")), fields)
        _flatten_data(_maybe_literal(doc.get("user_data")), fields)
        channel, event_id = doc.get("log_name"), _as_int(doc.get("event_id"))
        provider, host, ts_raw = doc.get("source_name"), doc.get("computer_name"), doc.get("@timestamp")
        fields.update({"EventID": event_id, "Channel": channel, "Provider_Name": provider, "Computer": host})
        for key, value in doc.items():
            if key not in ("event_data", "user_data"):
                fields.setdefault(key, value)
    else:  # OTRF / NXLog flat layout: EventData already flattened beside Channel and EventID
        fields = dict(doc)
        channel = doc.get("Channel")
        event_id = _as_int(doc.get("EventID"))
        provider = doc.get("SourceName") or doc.get("ProviderName") or doc.get("Provider_Name")
        host = doc.get("Hostname") or doc.get("Computer")
        ts_raw = doc.get("@timestamp") or doc.get("TimeCreated") or doc.get("EventTime")
        if event_id is None and channel is None:
            raise RecordError("neither 'EventID' nor 'Channel' present: not a Windows event")
        fields["EventID"] = event_id
        fields.setdefault("Provider_Name", provider)
        fields.setdefault("Computer", host)
    ts = parse_time(ts_raw) or fallback_ts
    if ts is None:
        raise RecordError(f"no usable timestamp ({ts_raw!r})")
    channel_s = str(channel) if channel is not None else None
    return LogRecord(
        id=stable_id("log", source, locator, record),
        ts=ts,
        source=source,
        provenance=Provenance(source=source, locator=locator, record=record),
        host=str(host) if host is not None else None,
        channel=channel_s,
        event_id=event_id if isinstance(event_id, int) else None,
        provider=str(provider) if provider is not None else None,
        fields=fields,
        message=str(doc["Message"]) if doc.get("Message") is not None else None,
    )
