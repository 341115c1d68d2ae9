"""Suricata EVE JSON: ``flow`` records become Flows; alert, dns, http, tls, fileinfo, anomaly (and the other
application records) become LogRecords on channel ``suricata/<event_type>`` with their fields flattened.

Suricata's own alerts keep their signature, id, category and metadata; the ``external-alerts`` detector
turns them into healthsec alerts inside the engine. ``stats`` records describe the sensor, not traffic,
and are counted in ``skipped`` rather than stored. Timestamps without an offset are read as UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from healthsec.ingest.siem.jsonfile import flatten, parse_ts, read_converted
from healthsec.model import Event, Flow, LogRecord, ParseError
from healthsec.model.common import stable_id

SKIPPED_TYPES = frozenset({"stats"})


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def _port(v: Any) -> int | None:
    p = _int(v)
    return p if p is not None and p <= 65535 else None


def eve_event(rec: dict[str, Any], *, source: str, locator: str, n: int) -> Event:
    """One EVE record as an event; raises ValueError naming what is wrong."""
    etype = rec.get("event_type")
    if not isinstance(etype, str) or not etype:
        raise ValueError("no event_type")
    ts = parse_ts(rec.get("timestamp"))
    flow_id = rec.get("flow_id")
    eid = stable_id("eve", locator.rsplit("/", 1)[-1], n, etype, flow_id, rec.get("timestamp"))
    src, dst = rec.get("src_ip"), rec.get("dest_ip")
    if etype == "flow":
        f = rec.get("flow")
        if not isinstance(f, dict):
            raise ValueError("flow record without a flow object")
        duration = None
        if f.get("start") and f.get("end"):
            duration = max(0.0, (parse_ts(f["end"]) - parse_ts(f["start"])).total_seconds())
        return Flow(
            id=eid,
            ts=parse_ts(f["start"]) if f.get("start") else ts,
            source=source,
            src_ip=src if isinstance(src, str) else None,
            dst_ip=dst if isinstance(dst, str) else None,
            src_port=_port(rec.get("src_port")),
            dst_port=_port(rec.get("dest_port")),
            protocol=str(rec.get("proto", "")).lower() or None,
            duration=duration,
            bytes_out=_int(f.get("bytes_toserver")),
            bytes_in=_int(f.get("bytes_toclient")),
            packets_out=_int(f.get("pkts_toserver")),
            packets_in=_int(f.get("pkts_toclient")),
            application=rec.get("app_proto") if isinstance(rec.get("app_proto"), str) else None,
            features={
                "state": f.get("state"),
                "reason": f.get("reason"),
                "alerted": str(bool(f.get("alerted"))),
                "suricata.flow_id": str(flow_id) if flow_id is not None else None,
            },
        )
    fields = flatten({k: v for k, v in rec.items() if k not in ("timestamp", "payload", "packet")})
    message = None
    if etype == "alert":
        alert = rec.get("alert")
        if not isinstance(alert, dict) or not isinstance(alert.get("signature"), str):
            raise ValueError("alert record without alert.signature")
        message = alert["signature"]
    elif etype == "anomaly" and isinstance(rec.get("anomaly"), dict):
        message = str(rec["anomaly"].get("event", "")) or None
    return LogRecord(
        id=eid,
        ts=ts,
        source=source,
        host=rec.get("host") if isinstance(rec.get("host"), str) else (dst if isinstance(dst, str) else None),
        channel=f"suricata/{etype}",
        provider="suricata",
        fields=fields,
        message=message,
    )


@dataclass
class EveSource:
    """Reads Suricata ``eve.json`` (NDJSON, or a JSON array; ``.gz`` too)."""

    path: Path
    name: str = "suricata"
    skipped: dict[str, int] = field(default_factory=dict)

    def read(self) -> Iterator[Event | ParseError]:
        locator = str(self.path)

        def convert(rec: dict[str, Any], n: int) -> Event | None:
            if rec.get("event_type") in SKIPPED_TYPES:
                key = str(rec["event_type"])
                self.skipped[key] = self.skipped.get(key, 0) + 1
                return None
            return eve_event(rec, source=self.name, locator=locator, n=n)

        yield from read_converted(self.path, self.name, "EVE record", convert)
