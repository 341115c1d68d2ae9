"""Wazuh ``alerts.json`` (one alert per line): each alert becomes a LogRecord on channel ``wazuh/<decoder>``.

The rule (id, level, description, groups, MITRE ids and tactics) is kept as fields so the
``external-alerts`` detector raises it through the engine with Wazuh's own ATT&CK mapping.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from healthsec.ingest.siem.jsonfile import flatten, parse_ts, read_converted
from healthsec.model import Event, LogRecord, ParseError
from healthsec.model.common import stable_id


def wazuh_event(rec: dict[str, Any], *, source: str, locator: str, n: int) -> LogRecord:
    rule = rec.get("rule")
    if not isinstance(rule, dict) or "id" not in rule or not isinstance(rule.get("level"), int):
        raise ValueError("no rule with id and integer level")
    if not 0 <= rule["level"] <= 16:
        raise ValueError(f"rule level {rule['level']} out of range 0..16")
    ts = parse_ts(rec.get("timestamp"))
    agent = rec.get("agent") if isinstance(rec.get("agent"), dict) else {}
    decoder = rec.get("decoder", {}).get("name") if isinstance(rec.get("decoder"), dict) else None
    uid = rec.get("id") or f"{n}"
    return LogRecord(
        id=stable_id("wazuh", locator.rsplit("/", 1)[-1], uid, rule["id"], rec.get("timestamp")),
        ts=ts,
        source=source,
        host=str(agent.get("name")) if agent.get("name") else None,
        channel=f"wazuh/{decoder or 'unknown'}",
        provider="wazuh",
        event_id=int(rule["id"]) if str(rule["id"]).isdigit() else None,
        fields=flatten({k: v for k, v in rec.items() if k not in ("timestamp",)}),
        message=str(rule.get("description") or "") or None,
    )


@dataclass
class WazuhAlertsSource:
    path: Path
    name: str = "wazuh"

    def read(self) -> Iterator[Event | ParseError]:
        locator = str(self.path)

        def convert(rec: dict[str, Any], n: int) -> Event:
            return wazuh_event(rec, source=self.name, locator=locator, n=n)

        yield from read_converted(self.path, self.name, "Wazuh alert", convert)
