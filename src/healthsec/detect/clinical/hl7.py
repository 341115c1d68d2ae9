"""HL7 v2 detector: malformed/oversized, injections, unseen types and senders, floods, bulk queries, ACKs."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from healthsec.detect.clinical.hl7_rules import find_injections
from healthsec.model import (
    Alert,
    ClinicalMessage,
    Entity,
    EntityKind,
    EntityRole,
    Event,
    Severity,
    parse_utc,
    stable_id,
)
from healthsec.privacy.pseudonymise import patient_pseudonym

VALID_ACK_CODES = frozenset({"AA", "AE", "AR", "CA", "CE", "CR"})
QUERY_CODES = frozenset({"QRY", "QBP", "VXQ", "RQI", "RQP", "RQQ", "QCN", "ERQ", "SPQ", "EQQ"})
WILDCARDS = frozenset({"*", "%", "?", "**", "%%"})


@dataclass
class SenderBaseline:
    """What one sender (MSH-3|MSH-4) did in benign traffic."""

    types: set[str] = field(default_factory=set)
    messages: int = 0
    max_size: int = 0
    max_rate: int = 0
    max_query_targets: int = 0
    negative_acks: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "types": sorted(self.types),
            "messages": self.messages,
            "max_size": self.max_size,
            "max_rate": self.max_rate,
            "max_query_targets": self.max_query_targets,
            "negative_acks": self.negative_acks,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SenderBaseline:
        return cls(
            types=set(d["types"]),
            messages=int(d["messages"]),
            max_size=int(d["max_size"]),
            max_rate=int(d["max_rate"]),
            max_query_targets=int(d["max_query_targets"]),
            negative_acks=int(d.get("negative_acks", 0)),
        )


def _time(ev: ClinicalMessage) -> datetime:
    """Receive time for live traffic (a sender cannot forge it), else the event time."""
    received = ev.fields.get("received_at")
    return parse_utc(received) if isinstance(received, str) else ev.ts


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, (list, tuple)) else []


@dataclass
class HL7Detector:
    """Per-sender baselines learnt by ``fit`` on benign HL7; ``detect`` keeps sliding windows between calls.

    Thresholds: a flood is more than ``max(flood_floor, flood_factor x the sender's busiest benign
    window)`` messages in ``window``; a bulk query is more than ``max(query_floor, 3 x baseline)``
    distinct patients queried in ``query_window``; oversized is over ``max_size`` bytes, or over
    ``size_factor`` x the sender's largest benign message (and over 64 kB).
    Patient identifiers enter alerts only as :func:`~healthsec.privacy.pseudonymise.patient_pseudonym` with
    ``phi_key`` (``local_authority`` is the hospital's MRN authority), and not at all without a key.
    """

    name: str = "hl7"
    version: str = "1.0"
    window: timedelta = timedelta(seconds=60)
    flood_floor: int = 120
    flood_factor: float = 3.0
    query_window: timedelta = timedelta(minutes=10)
    query_floor: int = 20
    max_size: int = 1_048_576
    size_factor: float = 4.0
    nack_floor: int = 10
    phi_key: bytes | None = None
    local_authority: str | None = None
    senders: dict[str, SenderBaseline] = field(default_factory=dict)
    applications: set[str] = field(default_factory=set)
    facilities: set[str] = field(default_factory=set)
    receivers: set[str] = field(default_factory=set)
    _recent: dict[str, deque[datetime]] = field(default_factory=dict)
    _queries: dict[str, deque[tuple[datetime, str]]] = field(default_factory=dict)
    _nacks: dict[str, deque[datetime]] = field(default_factory=dict)
    _control_ids: dict[str, set[str]] = field(default_factory=dict)
    _flooding: set[str] = field(default_factory=set)
    _novel: set[tuple[str, str]] = field(default_factory=set)

    # ---- learning -------------------------------------------------------------------------
    def fit(self, events: Iterable[Event]) -> None:
        """Learn senders, their message types, sizes and busiest windows from benign traffic."""
        msgs = sorted(
            (e for e in events if isinstance(e, ClinicalMessage) and e.protocol == "hl7"), key=_time
        )
        windows: dict[str, deque[datetime]] = {}
        queries: dict[str, deque[tuple[datetime, str]]] = {}
        for ev in msgs:
            if _as_list(ev.fields.get("errors")):
                continue  # a malformed message is never baseline
            sender = ev.sender or "|"
            base = self.senders.setdefault(sender, SenderBaseline())
            app, _, fac = sender.partition("|")
            self.applications.add(app)
            self.facilities.add(fac)
            base.types.add(ev.message_type)
            if ev.receiver:
                self.receivers.add(ev.receiver)
            base.messages += 1
            base.max_size = max(base.max_size, ev.size or 0)
            t = _time(ev)
            win = windows.setdefault(sender, deque())
            win.append(t)
            while win and t - win[0] > self.window:
                win.popleft()
            base.max_rate = max(base.max_rate, len(win))
            qwin = queries.setdefault(sender, deque())
            for target in self._query_targets(ev):
                qwin.append((t, target))
            while qwin and t - qwin[0][0] > self.query_window:
                qwin.popleft()
            base.max_query_targets = max(base.max_query_targets, len({q for _, q in qwin}))
            if ev.fields.get("ack_code") in ("AE", "AR", "CE", "CR"):
                base.negative_acks += 1

    def to_dict(self) -> dict[str, Any]:
        """The learnt baseline as JSON-ready data (models are saved as JSON, never pickled)."""
        return {
            "detector": self.name,
            "version": self.version,
            "senders": {k: v.to_dict() for k, v in sorted(self.senders.items())},
            "applications": sorted(self.applications),
            "facilities": sorted(self.facilities),
            "receivers": sorted(self.receivers),
        }

    def load_dict(self, data: Mapping[str, Any]) -> None:
        if data.get("detector") != self.name:
            raise ValueError(f"baseline is for detector {data.get('detector')!r}, not {self.name!r}")
        self.senders = {k: SenderBaseline.from_dict(v) for k, v in data["senders"].items()}
        self.applications = set(data["applications"])
        self.facilities = set(data["facilities"])
        self.receivers = set(data.get("receivers", []))

    # ---- detection ------------------------------------------------------------------------
    def detect(self, events: Sequence[Event]) -> list[Alert]:
        alerts: list[Alert] = []
        for ev in events:
            if isinstance(ev, ClinicalMessage) and ev.protocol == "hl7":
                alerts.extend(self._check(ev))
        return alerts

    def _check(self, ev: ClinicalMessage) -> list[Alert]:
        out: list[Alert] = []
        sender = ev.sender or "|"
        base = self.senders.get(sender)
        errors = [str(e) for e in _as_list(ev.fields.get("errors"))]
        size = ev.size or 0
        oversized = size > self.max_size or (
            base is not None and base.max_size and size > max(65_536, self.size_factor * base.max_size)
        )
        if oversized:
            limit = (
                self.max_size
                if size > self.max_size
                else int(self.size_factor * (base.max_size if base else 0))
            )
            out.append(
                self._alert(
                    ev,
                    "oversized",
                    "Oversized HL7 message",
                    0.8,
                    Severity.HIGH,
                    f"message of {size} bytes from {sender} exceeds the limit of {limit} bytes",
                    ("T1499", "T1190"),
                    ("impact", "initial-access"),
                    {"size": size, "limit": limit},
                )
            )
        if errors:
            sev = Severity.HIGH if any("control characters" in e for e in errors) else Severity.MEDIUM
            out.append(
                self._alert(
                    ev,
                    "malformed",
                    "Malformed HL7 message",
                    0.7,
                    sev,
                    f"message from {sender} is malformed: " + "; ".join(errors[:4]),
                    ("T1190", "T0866"),
                    ("initial-access",),
                    {"errors": len(errors)},
                )
            )
        text = ev.fields.get("text")
        if isinstance(text, str):
            hits = find_injections(text)
            if hits:
                techniques = tuple(sorted({t for h in hits for t in h.techniques}))
                what = "; ".join(f"{h.kind} injection in {h.location}: {h.snippet!r}" for h in hits[:3])
                out.append(
                    self._alert(
                        ev,
                        "injection",
                        "Injection payload in an HL7 field",
                        0.95,
                        Severity.HIGH,
                        f"{what} (sender {sender})",
                        techniques,
                        ("initial-access", "execution"),
                        {"hits": len(hits), "kind": hits[0].kind, "location": hits[0].location},
                    )
                )
        if self.senders and not errors:
            out.extend(self._novelty(ev, sender, base))
        out.extend(self._rates(ev, sender, base))
        out.extend(self._acks(ev, sender))
        return out

    def _novelty(self, ev: ClinicalMessage, sender: str, base: SenderBaseline | None) -> list[Alert]:
        app, _, fac = sender.partition("|")
        if ev.fields.get("code") == "ACK" and (base is not None or sender in self.receivers):
            # An ACK comes from a system the baseline saw receiving, and echoes the trigger of what
            # it answers; the ACK rules check it.
            return []
        key = (sender, "" if base is None else ev.message_type)
        if key in self._novel:
            return []  # one alert per new sender / new (sender, type), not one per message
        if base is None or ev.message_type not in base.types:
            self._novel.add(key)
        if base is None:
            new = [
                p
                for p, known in (
                    ("application " + repr(app), app in self.applications),
                    ("facility " + repr(fac), fac in self.facilities),
                )
                if not known
            ]
            detail = " and ".join(new) if new else "this application/facility pair"
            return [
                self._alert(
                    ev,
                    "unknown-sender",
                    "Unknown HL7 sender",
                    0.75,
                    Severity.MEDIUM,
                    f"{detail} never sent HL7 in the baseline ({len(self.senders)} known senders); "
                    f"sent {ev.message_type}",
                    ("T1565.002", "T0848"),
                    ("impact",),
                    {"message_type": ev.message_type},
                )
            ]
        if ev.message_type not in base.types:
            return [
                self._alert(
                    ev,
                    "unseen-type",
                    "HL7 message type the sender never sends",
                    0.7,
                    Severity.MEDIUM,
                    f"{sender} sent {ev.message_type}; its baseline has only {', '.join(sorted(base.types))}",
                    ("T0855", "T1565.002"),
                    ("impact",),
                    {"message_type": ev.message_type},
                )
            ]
        return []

    def _rates(self, ev: ClinicalMessage, sender: str, base: SenderBaseline | None) -> list[Alert]:
        out: list[Alert] = []
        t = _time(ev)
        win = self._recent.setdefault(sender, deque())
        win.append(t)
        while win and t - win[0] > self.window:
            win.popleft()
        limit = max(self.flood_floor, int(self.flood_factor * (base.max_rate if base else 0)))
        if len(win) > limit and sender not in self._flooding:
            self._flooding.add(sender)  # one alert per flood, re-armed when the rate falls back
            out.append(
                self._alert(
                    ev,
                    "flood",
                    "HL7 message flood",
                    0.85,
                    Severity.HIGH,
                    f"{sender} sent {len(win)} messages within {int(self.window.total_seconds())} s "
                    f"(limit {limit}; busiest benign window {base.max_rate if base else 'none'})",
                    ("T1499", "T0814"),
                    ("impact",),
                    {"count": len(win), "limit": limit},
                )
            )
        elif len(win) <= limit // 2:
            self._flooding.discard(sender)
        targets = self._query_targets(ev)
        if targets:
            wild = [q for q in targets if q in WILDCARDS or q.endswith("*") or q.endswith("%") or q == ""]
            qwin = self._queries.setdefault(sender, deque())
            qwin.extend((t, q) for q in targets)
            while qwin and t - qwin[0][0] > self.query_window:
                qwin.popleft()
            distinct = len({q for _, q in qwin})
            qlimit = max(self.query_floor, 3 * (base.max_query_targets if base else 0))
            if wild or distinct == qlimit + 1:
                minutes = int(self.query_window.total_seconds() // 60)
                reason = (
                    "a wildcard patient query"
                    if wild
                    else f"{distinct} distinct patients queried within {minutes} min (limit {qlimit})"
                )
                out.append(
                    self._alert(
                        ev,
                        "bulk-query",
                        "Bulk HL7 patient query",
                        0.85,
                        Severity.HIGH,
                        f"{sender} sent {reason} ({ev.message_type})",
                        ("T1213", "T1119"),
                        ("collection",),
                        {"distinct_patients": distinct, "limit": qlimit},
                    )
                )
        control = ev.fields.get("control_id")
        if isinstance(control, str) and ev.fields.get("code") != "ACK":
            ids = self._control_ids.setdefault(sender, set())
            if len(ids) > 100_000:
                ids.clear()
            ids.add(control)
        return out

    def _acks(self, ev: ClinicalMessage, sender: str) -> list[Alert]:
        if ev.fields.get("code") != "ACK" and "ack_code" not in ev.fields:
            return []
        out: list[Alert] = []
        code = ev.fields.get("ack_code")
        ref = ev.fields.get("ack_control_id")
        if code not in VALID_ACK_CODES:
            out.append(
                self._alert(
                    ev,
                    "ack-invalid",
                    "HL7 ACK anomaly: invalid acknowledgement code",
                    0.6,
                    Severity.MEDIUM,
                    f"ACK from {sender} carries MSA-1 {str(code)[:8]!r}, not one of AA/AE/AR/CA/CE/CR",
                    ("T0856", "T1565.002"),
                    ("impact",),
                    {},
                )
            )
        peer = ev.receiver or "|"
        seen = self._control_ids.get(peer)
        if seen and isinstance(ref, str) and ref not in seen:
            out.append(
                self._alert(
                    ev,
                    "ack-unsolicited",
                    "HL7 ACK anomaly: acknowledges an unseen message",
                    0.65,
                    Severity.MEDIUM,
                    f"ACK from {sender} to {peer} references a control id that "
                    f"{peer} never sent ({len(seen)} of its messages seen)",
                    ("T0856", "T1557"),
                    ("impact", "collection"),
                    {},
                )
            )
        if code in ("AE", "AR", "CE", "CR"):
            t = _time(ev)
            win = self._nacks.setdefault(sender, deque())
            win.append(t)
            while win and t - win[0] > self.window:
                win.popleft()
            if len(win) == self.nack_floor:
                out.append(
                    self._alert(
                        ev,
                        "nack-burst",
                        "HL7 ACK anomaly: burst of negative acknowledgements",
                        0.6,
                        Severity.MEDIUM,
                        f"{sender} returned {len(win)} AE/AR within {int(self.window.total_seconds())} s",
                        ("T0814", "T1499"),
                        ("impact",),
                        {"count": len(win)},
                    )
                )
        return out

    # ---- helpers --------------------------------------------------------------------------
    @staticmethod
    def _query_targets(ev: ClinicalMessage) -> list[str]:
        targets = [str(q) for q in _as_list(ev.fields.get("query_targets"))]
        code = ev.fields.get("code")
        if not targets and code in QUERY_CODES and ev.patient_id:
            targets = [ev.patient_id]
        return targets

    def _pseudonym(self, ev: ClinicalMessage) -> str | None:
        if self.phi_key is None or not ev.patient_id:
            return None
        authority = ev.fields.get("patient_authority")
        return patient_pseudonym(
            self.phi_key,
            ev.patient_id,
            authority=authority if isinstance(authority, str) else None,
            local_authority=self.local_authority,
        )

    def _alert(
        self,
        ev: ClinicalMessage,
        rule: str,
        title: str,
        score: float,
        severity: Severity,
        explanation: str,
        techniques: tuple[str, ...],
        tactics: tuple[str, ...],
        features: Mapping[str, float | str | None],
    ) -> Alert:
        entities = [Entity(EntityKind.APPLICATION, ev.sender or "|", EntityRole.ACTOR)]
        if ev.src_ip:
            entities.append(Entity(EntityKind.IP, ev.src_ip, EntityRole.ACTOR))
        if ev.receiver:
            entities.append(Entity(EntityKind.APPLICATION, ev.receiver, EntityRole.TARGET))
        masked = self._pseudonym(ev)
        if masked:
            entities.append(Entity(EntityKind.PATIENT, masked, EntityRole.TARGET))
        return Alert(
            id=stable_id("alert", self.name, rule, ev.id),
            ts=ev.ts,
            detector=f"{self.name}.{rule}",
            detector_version=self.version,
            title=title,
            score=score,
            severity=severity,
            explanation=explanation,
            evidence=(ev.id,),
            entities=tuple(entities),
            techniques=techniques,
            tactics=tactics,
            features={"rule": rule, "message_type": ev.message_type, **features},
        )
