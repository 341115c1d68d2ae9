"""DICOM monitoring SCP / proxy (pynetdicom) on loopback: logs associations and DIMSE operations as events."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, build_role, evt
from pynetdicom.events import Event as DimseEvent
from pynetdicom.transport import ThreadedAssociationServer

from healthsec.detect.base import AlertingDetector
from healthsec.ingest.dicom.guard import BUSY, TOO_LARGE, GuardedAssociationServer, GuardLimits
from healthsec.ingest.dicom.inspect import inspect_bytes
from healthsec.model import Alert, ClinicalMessage, Event, ParseError, Provenance, stable_id

# SOP class UIDs (PS3.4); pynetdicom.sop_class builds these names dynamically, so mypy cannot see them.
Verification = UID("1.2.840.10008.1.1")
QR_FIND = (UID("1.2.840.10008.5.1.4.1.2.1.1"), UID("1.2.840.10008.5.1.4.1.2.2.1"))
QR_MOVE = (UID("1.2.840.10008.5.1.4.1.2.1.2"), UID("1.2.840.10008.5.1.4.1.2.2.2"))
QR_GET = (UID("1.2.840.10008.5.1.4.1.2.1.3"), UID("1.2.840.10008.5.1.4.1.2.2.3"))
QUERY_KEYS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "StudyInstanceUID",
    "AccessionNumber",
    "Modality",
)


def wildcard_keys(identifier: Dataset) -> list[str]:
    """Patient keys of a query that matches (nearly) every patient, or [] when a key narrows it.

    Wildcard: ``*``/``?`` with under two literal characters. Empty keys are universal matching, which
    counts only when no other patient key narrows the query and the query is not for one study/series.
    """
    wild: list[str] = []
    empty: list[str] = []
    for kw in ("PatientName", "PatientID"):
        if kw not in identifier:
            continue
        value = str(identifier.get(kw) or "")
        literal = value.replace("*", "").replace("?", "").replace("^", "").strip()
        if ("*" in value or "?" in value) and len(literal) < 2:
            wild.append(kw)
        elif not value:
            empty.append(kw)
        else:
            return []  # a literal patient key narrows the query
    narrowed = any(str(identifier.get(k) or "").strip() for k in ("StudyInstanceUID", "AccessionNumber"))
    level = str(identifier.get("QueryRetrieveLevel", "")).upper()
    if narrowed:
        return []
    if wild:
        return wild + empty
    return empty if level == "PATIENT" else []


def _match_transfer_syntax(ds: Dataset, contexts: Sequence[Any]) -> None:
    """Re-label an uncompressed data set with the uncompressed transfer syntax the downstream accepted.

    pynetdicom picks the sub-operation context by the data set's transfer syntax; a decoded,
    uncompressed data set can be written in any uncompressed syntax, so only the label changes.
    """
    current = UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
    sop = str(ds.get("SOPClassUID", ""))
    offered = [UID(str(cx.transfer_syntax[0])) for cx in contexts if str(cx.abstract_syntax) == sop]
    if not offered or current in offered or (current and current.is_compressed):
        return
    plain = [ts for ts in offered if not ts.is_compressed]
    if plain:
        ds.file_meta.TransferSyntaxUID = plain[0]
        ds.set_original_encoding(
            plain[0].is_implicit_VR, plain[0].is_little_endian, ds.original_character_set
        )


@dataclass
class MonitorStats:
    """Live counts the CLI prints."""

    associations: int = 0
    rejected: int = 0
    aborted: int = 0
    truncated: int = 0
    refused: int = 0
    oversized: int = 0
    operations: dict[str, int] = field(default_factory=dict)
    forwarded: int = 0
    upstream_failures: int = 0
    alerts: int = 0

    def line(self) -> str:
        ops = " ".join(f"{k}={v}" for k, v in sorted(self.operations.items()))
        return (
            f"associations={self.associations} rejected={self.rejected} aborted={self.aborted} "
            f"truncated={self.truncated} refused={self.refused} oversized={self.oversized} {ops} "
            f"forwarded={self.forwarded} "
            f"upstream_failures={self.upstream_failures} alerts={self.alerts}"
        )


@dataclass
class DicomMonitor:
    """A DICOM SCP that records every association and operation; with ``upstream`` it is a proxy.

    Monitor mode answers C-ECHO and C-STORE with Success (nothing is kept), C-FIND with no matches,
    C-MOVE with Success when the destination is in ``move_destinations`` and 0xA801 otherwise.
    Proxy mode forwards C-ECHO, C-STORE and C-FIND to ``upstream`` (host, port, AE title) and relays
    its answers; C-MOVE is forwarded with the same destination (the PACS performs the sub-operations).
    """

    host: str = "127.0.0.1"
    port: int = 11112
    ae_title: str = "HEALTHSEC"
    upstream: tuple[str, int, str] | None = None
    move_destinations: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    detectors: Sequence[AlertingDetector] = ()
    on_event: Callable[[Event], None] | None = None
    on_alert: Callable[[Alert], None] | None = None
    on_error: Callable[[ParseError], None] | None = None
    name: str = "dicom-monitor"
    limits: GuardLimits = field(default_factory=GuardLimits)
    stats: MonitorStats = field(default_factory=MonitorStats)
    _server: ThreadedAssociationServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seq: Iterator[int] = field(default_factory=itertools.count)

    def start(self) -> int:
        """Start serving in background threads; returns the bound port (``port=0`` for an ephemeral one)."""
        # pynetdicom logs identifiers (patient names and ids of C-FIND/C-MOVE) at INFO and DEBUG:
        # keep it at WARNING so PHI never reaches the logs.
        logging.getLogger("pynetdicom").setLevel(max(logging.WARNING, logging.getLogger("pynetdicom").level))
        ae = AE(ae_title=self.ae_title)
        ae.maximum_pdu_size = self.limits.max_pdu_bytes
        for ctx in AllStoragePresentationContexts:
            # scu_role/scp_role: accept role selection so C-GET can return instances on this association
            ae.add_supported_context(
                str(ctx.abstract_syntax), ALL_TRANSFER_SYNTAXES, scu_role=True, scp_role=True
            )
        for sop in (Verification, *QR_FIND, *QR_MOVE, *QR_GET):
            ae.add_supported_context(sop, ALL_TRANSFER_SYNTAXES)
        handlers: list[Any] = [
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_ABORTED, self._on_aborted),
            (evt.EVT_CONN_CLOSE, self._on_close),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_FIND, self._on_find),
            (evt.EVT_C_MOVE, self._on_move),
            (evt.EVT_C_GET, self._on_get),
        ]
        # the guard keeps idle, flooding and oversized peers away from the association slots
        server = ae.make_server(
            (self.host, self.port),
            evt_handlers=handlers,
            server_class=GuardedAssociationServer,
            limits=self.limits,
            on_refuse=self._on_refused,
        )
        threading.Thread(target=server.serve_forever, name=f"{self.name}-accept", daemon=True).start()
        ae._servers.append(server)  # pynetdicom's own bookkeeping: server.shutdown() removes it
        self._server = server
        self.port = int(server.server_address[1])
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    # ---- recording ------------------------------------------------------------------------
    def _record(
        self, event: DimseEvent, op: str, fields: dict[str, object], patient: str | None = None
    ) -> None:
        assoc = event.assoc
        req, acc = assoc.requestor, assoc.acceptor
        self._emit(
            op,
            fields,
            (str(req.address), int(req.port), str(req.ae_title)),
            (str(acc.address), str(acc.ae_title)),
            patient,
        )

    def _emit(
        self,
        op: str,
        fields: dict[str, object],
        requestor: tuple[str, int, str],
        acceptor: tuple[str, str],
        patient: str | None = None,
    ) -> None:
        (req_addr, req_port, req_ae), (acc_addr, acc_ae) = requestor, acceptor
        now = datetime.now(UTC)
        n = next(self._seq)
        locator = f"{req_addr}:{req_port} {req_ae}->{acc_ae}"
        msg = ClinicalMessage(
            id=stable_id("dicom", self.name, locator, op, n, now.isoformat()),
            ts=now,
            source=self.name,
            provenance=Provenance(source=self.name, locator=locator, record=n, ingested_at=now),
            protocol="dicom",
            message_type=op,
            sender=req_ae.strip() or None,
            receiver=acc_ae.strip() or None,
            src_ip=req_addr or None,
            dst_ip=acc_addr or None,
            patient_id=patient,
            fields=fields,
        )
        with self._lock:
            if op.startswith("C-"):
                self.stats.operations[op] = self.stats.operations.get(op, 0) + 1
            if self.on_event:
                self.on_event(msg)
            for det in self.detectors:
                alerts = det.detect([msg])
                self.stats.alerts += len(alerts)
                if self.on_alert:
                    for alert in alerts:
                        self.on_alert(alert)

    def _error(self, reason: str, locator: str) -> None:
        if self.on_error:
            with self._lock:
                self.on_error(ParseError(self.name, locator, reason))

    # ---- association events ---------------------------------------------------------------
    def _on_refused(self, host: str, port: int, reason: str, detail: str) -> None:
        """A connection the guard closed before (or instead of) association: idle, flood, oversized PDU."""
        if reason == BUSY:
            self.stats.refused += 1  # a flood: counted, not one event per connection
            return
        if reason == TOO_LARGE:
            self.stats.oversized += 1
        else:
            self.stats.truncated += 1
        self._error(f"{detail} (truncated association, {reason})", f"{host}:{port}")
        self._emit(
            "TRUNCATED-ASSOCIATION",
            {"accepted": False, "reason": reason},
            (host, port, ""),
            (self.host, self.ae_title),
        )

    def _on_accepted(self, event: DimseEvent) -> None:
        self.stats.associations += 1
        contexts = sorted({str(c.abstract_syntax) for c in event.assoc.requestor.requested_contexts})
        self._record(event, "A-ASSOCIATE", {"abstract_syntaxes": contexts, "accepted": True})

    def _on_rejected(self, event: DimseEvent) -> None:
        self.stats.rejected += 1
        self._record(event, "A-ASSOCIATE-RJ", {"accepted": False})

    def _on_aborted(self, event: DimseEvent) -> None:
        self.stats.aborted += 1
        self._record(event, "A-ABORT", {})

    def _on_close(self, event: DimseEvent) -> None:
        assoc = event.assoc
        if assoc.is_established or assoc.is_released or assoc.is_aborted or assoc.is_rejected:
            return
        # The peer dropped the connection before a complete A-ASSOCIATE: a truncated association.
        self.stats.truncated += 1
        where = f"{assoc.requestor.address}:{assoc.requestor.port}"
        self._error("connection closed before a complete association request (truncated association)", where)
        self._record(event, "TRUNCATED-ASSOCIATION", {"accepted": False})

    # ---- DIMSE services -------------------------------------------------------------------
    def _on_echo(self, event: DimseEvent) -> int:
        self._record(event, "C-ECHO", {})
        if self.upstream is None:
            return 0x0000
        status = self._upstream_call(lambda a: a.send_c_echo(), Verification)
        return int(status.Status) if status is not None and "Status" in status else 0xC000

    def _on_store(self, event: DimseEvent) -> int | Dataset:
        fields: dict[str, object] = {"sop_class": str(event.request.AffectedSOPClassUID)}
        patient: str | None = None
        ds: Dataset | None = None
        try:
            ds = event.dataset
            ds.file_meta = event.file_meta
            raw = bytes(event.encoded_dataset(include_meta=True))
            ins = inspect_bytes(raw)
            fields.update(
                malformed=ins.malformed, preamble=ins.preamble, modality=str(ds.get("Modality", ""))
            )
            patient = str(ds.get("PatientID", "")).strip() or None
            issuer = str(ds.get("IssuerOfPatientID", "")).strip()
            if issuer:
                fields["patient_authority"] = issuer
        except Exception as exc:  # a corrupt data set must not take the SCP down
            fields["malformed"] = [f"data set cannot be decoded: {type(exc).__name__}"]
        self._record(event, "C-STORE", fields, patient)
        if self.upstream is None or ds is None:
            return 0x0000 if ds is not None else 0xC210
        sop = event.request.AffectedSOPClassUID
        status = self._upstream_call(
            lambda a: a.send_c_store(ds), sop, str(event.file_meta.TransferSyntaxUID)
        )
        return int(status.Status) if status is not None and "Status" in status else 0xA700

    def _query_fields(self, identifier: Dataset) -> dict[str, object]:
        return {
            "level": str(identifier.get("QueryRetrieveLevel", "")).upper() or None,
            "query_keys": [kw for kw in QUERY_KEYS if kw in identifier],
            "wildcard_keys": wildcard_keys(identifier),
        }

    def _on_find(self, event: DimseEvent) -> Iterator[tuple[int, Dataset | None]]:
        identifier = event.identifier
        self._record(
            event,
            "C-FIND",
            {**self._query_fields(identifier), "sop_class": str(event.request.AffectedSOPClassUID)},
        )
        if self.upstream is None:
            return
        host, port, aet = self.upstream
        ae = AE(ae_title=self.ae_title)
        model = str(event.request.AffectedSOPClassUID)
        ae.add_requested_context(model)
        assoc = ae.associate(host, port, ae_title=aet)
        if not assoc.is_established:
            self.stats.upstream_failures += 1
            yield 0xA700, None
            return
        try:
            for status, ident in assoc.send_c_find(identifier, model):
                if status is None or "Status" not in status:
                    self.stats.upstream_failures += 1
                    yield 0xA700, None
                    return
                code = int(status.Status)
                if code in (0xFF00, 0xFF01):
                    yield code, ident
            self.stats.forwarded += 1
        finally:
            assoc.release()

    def _on_move(self, event: DimseEvent) -> Iterator[Any]:
        identifier = event.identifier
        dest = str(
            event.move_destination.decode()
            if isinstance(event.move_destination, bytes)
            else event.move_destination
        ).strip()
        self._record(event, "C-MOVE", {**self._query_fields(identifier), "move_destination": dest})
        if self.upstream is not None:
            host, port, aet = self.upstream
            ae = AE(ae_title=self.ae_title)
            model = str(event.request.AffectedSOPClassUID)
            ae.add_requested_context(model)
            assoc = ae.associate(host, port, ae_title=aet)
            final = 0xA801
            if assoc.is_established:
                for status, _ in assoc.send_c_move(identifier, dest, model):
                    if status is not None and "Status" in status:
                        final = int(status.Status)
                assoc.release()
                self.stats.forwarded += 1
            else:
                self.stats.upstream_failures += 1
            yield (None, None) if final == 0xA801 else self.move_destinations.get(dest, ("127.0.0.1", 0))
            if final != 0xA801:
                yield 0
            return
        yield self.move_destinations.get(dest, (None, None))
        yield 0

    def _on_get(self, event: DimseEvent) -> Iterator[Any]:
        identifier = event.identifier
        self._record(event, "C-GET", self._query_fields(identifier))
        if self.upstream is None:
            yield 0
            return
        # Proxy: retrieve from the PACS over our own association (taking the SCP role for the storage
        # classes the modality negotiated), then hand the instances back as C-GET sub-operations.
        # The instances are held in memory for the duration of one request.
        host, port, aet = self.upstream
        model = str(event.request.AffectedSOPClassUID)
        collected: list[Dataset] = []

        downstream = event.assoc

        def keep(sub: DimseEvent) -> int:
            ds = sub.dataset
            ds.file_meta = sub.file_meta
            _match_transfer_syntax(ds, downstream.accepted_contexts)
            collected.append(ds)
            return 0x0000

        ae = AE(ae_title=self.ae_title)
        ae.add_requested_context(model)
        roles: list[Any] = []
        storage = {
            str(cx.abstract_syntax): str(cx.transfer_syntax[0])
            for cx in event.assoc.accepted_contexts
            if cx.as_scu and str(cx.abstract_syntax) not in (*QR_FIND, *QR_MOVE, *QR_GET, Verification)
        }
        # One context per transfer syntax, so the PACS finds one matching how it holds each instance.
        for sop, tsyntax in sorted(storage.items())[:40]:
            for ts in dict.fromkeys((tsyntax, ExplicitVRLittleEndian, ImplicitVRLittleEndian)):
                ae.add_requested_context(sop, ts)
            roles.append(build_role(sop, scp_role=True))
        assoc = ae.associate(host, port, ae_title=aet, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, keep)])
        if not assoc.is_established:
            self.stats.upstream_failures += 1
            yield 0
            yield 0xA702, None
            return
        try:
            for _status, _ in assoc.send_c_get(identifier, model):
                pass
            self.stats.forwarded += 1
        finally:
            assoc.release()
        yield len(collected)
        for ds in collected:
            yield 0xFF00, ds

    def _upstream_call(
        self, call: Callable[[Any], Dataset], sop: Any, transfer_syntax: str | None = None
    ) -> Dataset | None:
        assert self.upstream is not None
        host, port, aet = self.upstream
        ae = AE(ae_title=self.ae_title)
        if transfer_syntax:
            ae.add_requested_context(sop, transfer_syntax)
        else:
            ae.add_requested_context(sop)
        assoc = ae.associate(host, port, ae_title=aet)
        if not assoc.is_established:
            self.stats.upstream_failures += 1
            return None
        try:
            status = call(assoc)
            self.stats.forwarded += 1
            return status
        finally:
            assoc.release()
