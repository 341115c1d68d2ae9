"""DICOM detector: executable preambles, malformed files, unknown AEs, wildcard queries, bulk moves."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from healthsec.model import Alert, ClinicalMessage, Entity, EntityKind, EntityRole, Event, Severity, stable_id
from healthsec.privacy.pseudonymise import patient_pseudonym

EXECUTABLE_PREAMBLES = frozenset({"pe", "dos-mz", "elf", "macho", "macho-fat", "script"})
EMBEDDED_PREAMBLES = frozenset({"zip", "pdf"})
RETRIEVE_OPS = frozenset({"C-MOVE", "C-GET"})


@dataclass
class AEBaseline:
    """What one calling AE title did in benign traffic."""

    peers: set[str] = field(default_factory=set)
    operations: set[str] = field(default_factory=set)
    destinations: set[str] = field(default_factory=set)
    max_retrievals: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "peers": sorted(self.peers),
            "operations": sorted(self.operations),
            "destinations": sorted(self.destinations),
            "max_retrievals": self.max_retrievals,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AEBaseline:
        return cls(set(d["peers"]), set(d["operations"]), set(d["destinations"]), int(d["max_retrievals"]))


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, (list, tuple)) else []


@dataclass
class DicomDetector:
    """Per-AE baselines learnt by ``fit`` from benign associations; file findings need no baseline.

    A bulk retrieval is more than ``max(retrieve_floor, 3 x the AE's busiest benign window)`` C-MOVE/
    C-GET requests within ``window``. Patient ids enter alerts only as ``patient_pseudonym`` with ``phi_key``
    (``local_authority``: the hospital's MRN authority, matched against IssuerOfPatientID).
    """

    name: str = "dicom"
    version: str = "1.0"
    window: timedelta = timedelta(minutes=10)
    retrieve_floor: int = 20
    phi_key: bytes | None = None
    local_authority: str | None = None
    aes: dict[str, AEBaseline] = field(default_factory=dict)
    _retrievals: dict[str, deque[datetime]] = field(default_factory=dict)
    _bulk: set[str] = field(default_factory=set)

    def fit(self, events: Iterable[Event]) -> None:
        """Learn calling AE titles, their peers, operations, move destinations and retrieval rates."""
        windows: dict[str, deque[datetime]] = {}
        for ev in sorted(
            (e for e in events if isinstance(e, ClinicalMessage) and e.protocol == "dicom"),
            key=lambda e: e.ts,
        ):
            if ev.message_type == "FILE" or not ev.sender:
                continue
            base = self.aes.setdefault(ev.sender, AEBaseline())
            if ev.src_ip:
                base.peers.add(ev.src_ip)
            base.operations.add(ev.message_type)
            dest = ev.fields.get("move_destination")
            if isinstance(dest, str) and dest:
                base.destinations.add(dest)
            if ev.message_type in RETRIEVE_OPS:
                win = windows.setdefault(ev.sender, deque())
                win.append(ev.ts)
                while win and ev.ts - win[0] > self.window:
                    win.popleft()
                base.max_retrievals = max(base.max_retrievals, len(win))

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.name,
            "version": self.version,
            "aes": {k: v.to_dict() for k, v in sorted(self.aes.items())},
        }

    def load_dict(self, data: Mapping[str, Any]) -> None:
        if data.get("detector") != self.name:
            raise ValueError(f"baseline is for detector {data.get('detector')!r}, not {self.name!r}")
        self.aes = {k: AEBaseline.from_dict(v) for k, v in data["aes"].items()}

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        alerts: list[Alert] = []
        for ev in events:
            if isinstance(ev, ClinicalMessage) and ev.protocol == "dicom":
                alerts.extend(self._content(ev))
                if ev.message_type != "FILE":
                    alerts.extend(self._network(ev))
        return alerts

    def _content(self, ev: ClinicalMessage) -> list[Alert]:
        out: list[Alert] = []
        where = str(ev.fields.get("file") or f"C-STORE from {ev.sender} ({ev.src_ip})")
        preamble = ev.fields.get("preamble")
        if preamble in EXECUTABLE_PREAMBLES:
            out.append(
                self._alert(
                    ev,
                    "polyglot",
                    "Executable hidden in a DICOM preamble (CVE-2019-11687)",
                    0.98,
                    Severity.CRITICAL,
                    f"{where}: the 128-byte preamble starts a {preamble} executable; the file runs "
                    "as a program and reads as a valid DICOM image (PE/DICOM polyglot)",
                    ("T1027.009", "T1204.002", "T0863"),
                    ("defense-evasion", "execution"),
                    {"preamble": str(preamble)},
                )
            )
        elif preamble in EMBEDDED_PREAMBLES:
            out.append(
                self._alert(
                    ev,
                    "embedded",
                    "Foreign file format in a DICOM preamble",
                    0.8,
                    Severity.HIGH,
                    f"{where}: the preamble carries a {preamble} header instead of zeros or TIFF",
                    ("T1027.009",),
                    ("defense-evasion",),
                    {"preamble": str(preamble)},
                )
            )
        malformed = [str(m) for m in _as_list(ev.fields.get("malformed"))]
        if malformed:
            out.append(
                self._alert(
                    ev,
                    "malformed",
                    "Malformed DICOM data set",
                    0.6,
                    Severity.MEDIUM,
                    f"{where}: " + "; ".join(malformed[:3]),
                    ("T1203", "T0819"),
                    ("execution", "initial-access"),
                    {"problems": len(malformed)},
                )
            )
        return out

    def _network(self, ev: ClinicalMessage) -> list[Alert]:
        out: list[Alert] = []
        ae = ev.sender or ""
        base = self.aes.get(ae)
        op = ev.message_type
        if op == "TRUNCATED-ASSOCIATION":
            out.append(
                self._alert(
                    ev,
                    "truncated-association",
                    "Truncated DICOM association",
                    0.4,
                    Severity.LOW,
                    f"{ev.src_ip} closed the connection before completing an association request "
                    "(scanner or fuzzer)",
                    ("T1046",),
                    ("discovery",),
                    {},
                )
            )
            return out
        if self.aes and base is None and op == "A-ASSOCIATE":
            out.append(
                self._alert(
                    ev,
                    "unknown-ae",
                    "Unknown DICOM AE title",
                    0.75,
                    Severity.MEDIUM,
                    f"calling AE {ae!r} from {ev.src_ip} never associated in the baseline "
                    f"({len(self.aes)} known AE titles); called {ev.receiver!r}",
                    ("T0848", "T1078"),
                    ("initial-access",),
                    {},
                )
            )
        wild = [str(k) for k in _as_list(ev.fields.get("wildcard_keys"))]
        if op == "C-FIND" and wild:
            out.append(
                self._alert(
                    ev,
                    "wildcard-query",
                    "Wildcard DICOM patient query (enumeration)",
                    0.85,
                    Severity.HIGH,
                    f"{ae!r} from {ev.src_ip} sent a {ev.fields.get('level') or 'query'}-level C-FIND "
                    f"matching every patient on {', '.join(wild)}",
                    ("T1213", "T0888"),
                    ("collection", "discovery"),
                    {"wildcard_keys": ",".join(wild)},
                )
            )
        if op in RETRIEVE_OPS:
            out.extend(self._retrieval(ev, ae, base))
        if (
            op == "C-STORE"
            and base is not None
            and (
                (ev.src_ip and base.peers and ev.src_ip not in base.peers) or "C-STORE" not in base.operations
            )
        ):
            why = (
                f"from {ev.src_ip}, not one of its peers {sorted(base.peers)}"
                if ev.src_ip not in base.peers
                else "although it never stored in the baseline"
            )
            out.append(
                self._alert(
                    ev,
                    "unexpected-store",
                    "DICOM store from an unexpected peer",
                    0.7,
                    Severity.MEDIUM,
                    f"{ae!r} sent C-STORE {why}",
                    ("T1565.001", "T0848"),
                    ("impact",),
                    {},
                )
            )
        return out

    def _retrieval(self, ev: ClinicalMessage, ae: str, base: AEBaseline | None) -> list[Alert]:
        out: list[Alert] = []
        dest = ev.fields.get("move_destination")
        new_dest = isinstance(dest, str) and dest and (base is None or dest not in base.destinations)
        win = self._retrievals.setdefault(ae, deque())
        win.append(ev.ts)
        while win and ev.ts - win[0] > self.window:
            win.popleft()
        limit = max(self.retrieve_floor, 3 * (base.max_retrievals if base else 0))
        if new_dest and self.aes:
            out.append(
                self._alert(
                    ev,
                    "new-destination",
                    "DICOM retrieval to a new destination",
                    0.7,
                    Severity.MEDIUM,
                    f"{ae!r} asked for images to be moved to {dest!r}, a destination it never used",
                    ("T1048", "T1020"),
                    ("exfiltration",),
                    {"move_destination": str(dest)},
                )
            )
        if len(win) > limit and ae not in self._bulk:
            self._bulk.add(ae)
            out.append(
                self._alert(
                    ev,
                    "bulk-retrieval",
                    "Bulk DICOM retrieval (possible exfiltration)",
                    0.9,
                    Severity.HIGH,
                    f"{ae!r} sent {len(win)} C-MOVE/C-GET requests within "
                    f"{int(self.window.total_seconds() // 60)} min (limit {limit}); "
                    f"last destination {dest!r}",
                    ("T1048", "T1020", "T0882"),
                    ("exfiltration",),
                    {"count": len(win), "limit": limit},
                )
            )
        elif len(win) <= limit // 2:
            self._bulk.discard(ae)
        return out

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
        entities: list[Entity] = []
        if ev.sender:
            entities.append(Entity(EntityKind.AE_TITLE, ev.sender, EntityRole.ACTOR))
        if ev.src_ip:
            entities.append(Entity(EntityKind.IP, ev.src_ip, EntityRole.ACTOR))
        if ev.receiver:
            entities.append(Entity(EntityKind.AE_TITLE, ev.receiver, EntityRole.TARGET))
        file = ev.fields.get("file")
        if isinstance(file, str):
            entities.append(Entity(EntityKind.FILE, file, EntityRole.TARGET))
        if ev.patient_id and self.phi_key is not None:
            issuer = ev.fields.get("patient_authority")
            masked = patient_pseudonym(
                self.phi_key,
                ev.patient_id,
                authority=issuer if isinstance(issuer, str) else None,
                local_authority=self.local_authority,
            )
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
            features={"rule": rule, "operation": ev.message_type, **features},
        )
