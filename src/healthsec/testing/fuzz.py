"""Fuzz targets: every parser that reads outside input, with seeds from real samples and its allowed errors.

A target takes bytes, runs the real entry point (file sources read a file written with those bytes) to the
end, and may only return or raise one of its ``allowed`` exceptions (the parser's own error type: bad
records otherwise come back as ``ParseError`` data). Any other exception is a crash. ``tests/unit/fuzz``
runs each target under hypothesis with a small budget; ``benchmarks/fuzz.py`` runs more and prints counts.
"""

from __future__ import annotations

import gzip
import itertools
import json
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MAX_SEED_BYTES = 96 * 1024
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Target:
    """One parser entry point under fuzzing."""

    name: str
    seeds: Callable[[Path], list[bytes]]  # from ../shared/data
    run: Callable[[bytes, Path], object]  # (input, a scratch folder) -> anything; must not crash
    allowed: tuple[type[BaseException], ...] = ()
    json_seeds: bool = False  # also mutate the seeds structurally as JSON
    examples: int = 60  # examples in the test suite's budget (the benchmark multiplies)
    _seed_cache: list[bytes] = field(default_factory=list)

    def seed_list(self, data: Path) -> list[bytes]:
        if not self._seed_cache:
            self._seed_cache = [s[:MAX_SEED_BYTES] for s in self.seeds(data) if s] or [b""]
        return self._seed_cache


def drain(items: Iterable[Any]) -> int:
    """Consume a source's iterator (errors arrive as data) and count what came out."""
    return sum(1 for _ in items)


def _write(scratch: Path, name: str, data: bytes) -> Path:
    path = scratch / name
    path.write_bytes(data)
    return path


def _lines(path: Path, n: int, skip: int = 0) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        return b"".join(itertools.islice(fh, skip, skip + n))


# ---- seeds --------------------------------------------------------------------------------------------
def _hl7_seeds(data: Path) -> list[bytes]:
    files = sorted((data / "hl7v2-fhir-samples-cdc" / "examples").rglob("*.hl7"))
    return [p.read_bytes() for p in files[:12]]


def _mllp_seeds(data: Path) -> list[bytes]:
    from healthsec.ingest.hl7.mllp import frame

    msgs = _hl7_seeds(data)
    return [frame(m) for m in msgs[:6]] + [frame(msgs[0]) + frame(msgs[1])]


def _dicom_seeds(data: Path) -> list[bytes]:
    folder = data / "dicom-samples" / "pydicom_test_files"
    files = sorted(p for p in folder.glob("*.dcm") if p.stat().st_size <= MAX_SEED_BYTES)
    return [p.read_bytes() for p in files[:12]]


def _associate_rq(data: Path) -> bytes:
    """The A-ASSOCIATE-RQ a real pynetdicom SCU sends (recorded on a loopback socket)."""
    import socket
    import threading

    from pynetdicom import AE

    with socket.create_server(("127.0.0.1", 0)) as server:
        ae = AE(ae_title="MODALITY1")
        ae.acse_timeout = ae.network_timeout = 1
        ae.add_requested_context("1.2.840.10008.1.1")
        ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2")
        port = server.getsockname()[1]
        thread = threading.Thread(target=ae.associate, args=("127.0.0.1", port), daemon=True)
        thread.start()
        conn, _ = server.accept()
        with conn:
            buf = conn.recv(6)
            while len(buf) < 6 + int.from_bytes(buf[2:6], "big"):
                buf += conn.recv(65536)
        thread.join(5)
    return buf


def _pdu_seeds(data: Path) -> list[bytes]:
    rq = _associate_rq(data)
    release = b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00"
    return [rq, rq + release]


def _evtx_seeds(data: Path) -> list[bytes]:
    files = sorted(
        (data / "sigma-rules" / "regression_data").rglob("*.evtx.gz"), key=lambda p: p.stat().st_size
    )
    return [gzip.decompress(p.read_bytes()) for p in files[:3]]


def _otrf_json_seeds(data: Path) -> list[bytes]:
    out: list[bytes] = []
    for path in sorted((data / "otrf-security-datasets" / "datasets" / "atomic").rglob("*.zip"))[:40]:
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                if name.endswith(".json") and zf.getinfo(name).file_size:
                    with zf.open(name) as fh:
                        out.append(b"".join(itertools.islice(fh, 8)))
                    break
        if len(out) >= 6:
            break
    return out


def _syslog_seeds(data: Path) -> list[bytes]:
    out: list[bytes] = []
    for path in sorted((data / "wazuh-ruleset-test-logs").rglob("*.ini"))[:60]:
        for ln in path.read_text(errors="replace").splitlines():
            if ln.startswith("log ") and "=" in ln:
                out.append(ln.split("=", 1)[1].strip().encode())
        if len(out) >= 20:
            break
    return [b"\n".join(out[i : i + 4]) for i in range(0, len(out), 4)] + [
        b"<34>1 2026-01-01T10:00:00Z host app 123 ID47 - message\n<13>Jan  1 10:00:00 host sshd[1]: ok"
    ]


def _zeek_seeds(data: Path) -> list[bytes]:
    path = data / "otrf-security-datasets/datasets/compound/apt29/day1/zeek/combined_zeek.log.gz"
    return [_lines(path, 15), _lines(path, 15, skip=400)]


def _flow_csv_seeds(data: Path) -> list[bytes]:
    kdd = data / "nsl-kdd" / "KDDTest+.txt.gz"
    unsw = data / "unsw-nb15" / "UNSW_NB15_training-set.csv.gz"
    return [_lines(kdd, 20), _lines(unsw, 20)]


def _pcap_seeds(data: Path) -> list[bytes]:
    folder = data / "protocol-pcaps-ndpi" / "pcap"
    return [(folder / name).read_bytes() for name in ("hl7.pcap", "modbus.pcap") if (folder / name).exists()]


def _stix_seeds(data: Path) -> list[bytes]:
    folder = data / "stix21-examples-oasis" / "examples"
    return [p.read_bytes() for p in sorted(folder.glob("*.json"))]


def _envelope_seeds(data: Path) -> list[bytes]:
    out = []
    for raw in _stix_seeds(data):
        doc = json.loads(raw)
        out.append(json.dumps({"objects": doc.get("objects", [])}).encode())
    return out


def _csaf_seeds(data: Path) -> list[bytes]:
    files = sorted((data / "cisa-csaf-icsma").rglob("*.json"))
    return [p.read_bytes() for p in files if p.stat().st_size <= MAX_SEED_BYTES][:6]


def _fhir_seeds(data: Path) -> list[bytes]:
    folder = data / "fhir-bulk-synthea-10-patients"
    patient = json.loads(_lines(folder / "Patient.000.ndjson.gz", 1))
    practitioner = json.loads(_lines(folder / "Practitioner.000.ndjson.gz", 1))
    audit = {  # an AuditEvent about that (synthetic, Synthea) patient by that practitioner
        "resourceType": "AuditEvent",
        "id": "ae-1",
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110"},
        "action": "R",
        "recorded": "2026-01-01T10:00:00Z",
        "outcome": "0",
        "agent": [
            {
                "who": {"reference": f"Practitioner/{practitioner['id']}"},
                "requestor": True,
                "network": {"address": "10.1.2.3", "type": "2"},
            }
        ],
        "source": {"observer": {"display": "ehr"}},
        "entity": [{"what": {"reference": f"Patient/{patient['id']}"}}],
    }
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": audit}]}
    return [json.dumps(audit).encode(), json.dumps(bundle).encode()]


def _fhir_bundle_seeds(data: Path) -> list[bytes]:
    folder = data / "fhir-bulk-synthea-10-patients"
    names = ("Patient", "Practitioner", "Encounter", "PractitionerRole")
    return [_lines(folder / f"{n}.000.ndjson.gz", 2) for n in names]


def _ton_rows(data: Path) -> list[dict[str, str]]:
    import csv

    path = data / "ton-iot-telemetry" / "Train_Test_IoT_Thermostat.csv.gz"
    with gzip.open(path, "rt") as fh:
        return list(itertools.islice(csv.DictReader(fh), 5))


def _mqtt_seeds(data: Path) -> list[bytes]:
    rows = _ton_rows(data)
    return [
        json.dumps({"device_id": "thermostat-1", "ts": "2026-01-01T10:00:00Z", "metrics": row}).encode()
        for row in rows
    ] + [json.dumps({"temperature": 36.6, "ip": "10.0.0.9", "ts": 1767261600}).encode()]


def _telemetry_csv_seeds(data: Path) -> list[bytes]:
    return [_lines(data / "ton-iot-telemetry" / "Train_Test_IoT_Thermostat.csv.gz", 12)]


_NETFLOW_SEEDS = (  # v5, v9 and IPFIX export packets: templates with data, templates alone, data alone
    "netflow5_test_juniper_mx80.dat",
    "netflow5_test_invalid02.dat",
    "netflow9_test_valid01.dat",
    "netflow9_test_streamcore_tpl_data256.dat",
    "netflow9_test_0length_fields_tpl_data.dat",
    "netflow9_test_cisco_asa_1_tpl.dat",
    "netflow9_test_cisco_asa_1_data.dat",
    "netflow9_test_h3c_netstream_varstring_tpl3281.dat",
    "ipfix_test_ixia_tpldata256.dat",
    "ipfix_test_mikrotik_tpl.dat",
    "ipfix_test_mikrotik_data258.dat",
    "ipfix.dat",
)


def _netflow_seeds(data: Path) -> list[bytes]:
    folder = data / "netflow-ipfix-captures" / "logstash-codec-netflow-dat"
    return [(folder / n).read_bytes() for n in _NETFLOW_SEEDS if (folder / n).exists()]


def _syslog_receiver_seeds(data: Path) -> list[bytes]:
    """What a TCP peer sends: newline-framed and RFC 6587 octet-counted messages (RFC 5424 and 3164)."""
    lines = b"\n".join(_syslog_seeds(data)).splitlines()[:12]
    rfc5424 = b'<165>1 2026-01-01T10:00:00.5+01:00 pacs01 dicomd 42 STORE [ex@32473 aet="CT1" n="3"] stored'
    counted = b"".join(b"%d %s" % (len(m), m) for m in (rfc5424, *lines[:3]))
    return [b"\n".join(lines) + b"\n", rfc5424 + b"\n", counted]


def _misp_seeds(data: Path) -> list[bytes]:
    """MISP events as a partner's MISP exports them: the OASIS STIX 2.1 examples through MISP's own
    misp-stix converter (the direction MISP itself uses to import STIX)."""
    import stix2
    from misp_stix_converter import ExternalSTIX2toMISPParser

    out: list[bytes] = []
    for raw in _stix_seeds(data):
        parser = ExternalSTIX2toMISPParser()
        parser.load_stix_bundle(stix2.parse(raw.decode(), allow_custom=True))
        parser.parse_stix_bundle(single_event=True)
        out.append(b'{"Event": ' + parser.misp_event.to_json().encode() + b"}")
    return out


# ---- runners ------------------------------------------------------------------------------------------
def _run_hl7(raw: bytes, scratch: Path) -> object:
    from healthsec.ingest.hl7.files import HL7FileSource

    return drain(HL7FileSource([_write(scratch, "in.hl7", raw)]).read())


def _run_mllp(raw: bytes, scratch: Path) -> object:
    from healthsec.ingest.hl7.mllp import MllpDecoder, deframe_all
    from healthsec.ingest.hl7.parse import iter_text_events

    decoder = MllpDecoder(max_size=16 * 1024)
    blocks: list[bytes | None] = []
    for i in range(0, len(raw), 97):  # fed in small chunks, as TCP delivers them
        blocks += decoder.feed(raw[i : i + 97])
    deframe_all(raw)
    text = b"".join(b for b in blocks if b).decode("utf-8", errors="replace")
    return drain(iter_text_events(text, source="fuzz", locator="mllp", received=NOW))


def _run_hl7_pcap(raw: bytes, scratch: Path) -> object:
    from healthsec.ingest.hl7.pcap import HL7PcapSource

    return drain(HL7PcapSource([_write(scratch, "in.pcap", raw)]).read())


def _run_dicom(raw: bytes, scratch: Path) -> object:
    from healthsec.ingest.dicom.inspect import DicomFileSource

    return drain(DicomFileSource([_write(scratch, "in.dcm", raw)]).read())


_MONITOR: dict[str, Any] = {}


def _run_dicom_pdu(raw: bytes, scratch: Path) -> object:
    """Send the bytes to a live DICOM monitor, then check it still answers a real C-ECHO."""
    import contextlib
    import socket

    from pynetdicom import AE

    from healthsec.ingest.dicom.guard import GuardLimits
    from healthsec.ingest.dicom.monitor import DicomMonitor

    if "port" not in _MONITOR:  # one monitor per process, stopped at exit with the daemon threads
        monitor = DicomMonitor(port=0, limits=GuardLimits(idle_s=0.5, per_client=64))
        _MONITOR["port"] = monitor.start()
        _MONITOR["monitor"] = monitor
    port = int(_MONITOR["port"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s, contextlib.suppress(OSError):
        s.sendall(raw)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    # the property: the monitor keeps serving. Associations of earlier inputs may still hold some of
    # pynetdicom's ten slots while their threads wind down (slowly on a loaded machine), so allow 30 s.
    ae = AE(ae_title="FUZZCHECK")
    ae.acse_timeout = ae.network_timeout = ae.dimse_timeout = 10
    ae.add_requested_context("1.2.840.10008.1.1")
    deadline = time.monotonic() + 30
    while True:
        assoc = ae.associate("127.0.0.1", port, ae_title="HEALTHSEC")
        if assoc.is_established:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the DICOM monitor stopped accepting associations")
        time.sleep(0.5)
    status = assoc.send_c_echo()
    assoc.release()
    if "Status" not in status or int(status.Status) != 0:
        raise RuntimeError("the DICOM monitor stopped answering C-ECHO")
    return True


def _log_runner(name: str, fmt: str) -> Callable[[bytes, Path], object]:
    def run(raw: bytes, scratch: Path) -> object:
        from healthsec.ingest.logs.sources import LogFileSource

        return drain(LogFileSource(_write(scratch, name, raw), fmt=fmt, year=2026).read())

    return run


def _run_flow_csv(raw: bytes, scratch: Path) -> object:
    from healthsec.ingest.flows.source import FlowFileSource

    return drain(FlowFileSource(str(_write(scratch, "in.csv", raw)), "auto").read())


def _run_pcap_flows(raw: bytes, scratch: Path) -> object:
    from healthsec.ingest.flows.source import FlowFileSource

    return drain(FlowFileSource(str(_write(scratch, "in.pcap", raw)), "pcap").read())


def _run_stix(raw: bytes, scratch: Path) -> object:
    from healthsec.share.stix_import import parse_bundle

    return parse_bundle(raw)


_SHARING: dict[str, Any] = {}


def _run_envelope(raw: bytes, scratch: Path) -> object:
    from healthsec.share.taxii_add import add_envelope
    from healthsec.store import Store
    from healthsec.store.sharing import Sharing

    if "sharing" not in _SHARING:  # one store per process: migrations are the slow part
        store = Store.open(f"sqlite:///{scratch / 'taxii.db'}", "fuzz")
        _SHARING["sharing"] = sharing = Sharing(store.engine, "fuzz")
        _SHARING["cid"] = str(sharing.collections.ensure("fuzz", "fuzz")["id"])
    return add_envelope(_SHARING["sharing"], _SHARING["cid"], raw, "fuzzer", frozenset())


def _run_csaf(raw: bytes, scratch: Path) -> object:
    from healthsec.ingest.intel.csaf import parse_csaf

    return parse_csaf(raw, "fuzz.json")


def _run_fhir(raw: bytes, scratch: Path) -> object:
    from healthsec.ingest.fhir.auditevent import AuditEventFileSource

    ndjson = raw.replace(b"\n", b" ") + b"\n" + raw
    return drain(AuditEventFileSource([_write(scratch, "in.ndjson", ndjson)]).read())


def _run_fhir_bundles(raw: bytes, scratch: Path) -> object:
    from healthsec.ingest.fhir.bundles import load_directory

    folder = scratch / "bundles"
    folder.mkdir(exist_ok=True)
    _write(folder, "Patient.000.ndjson", raw)
    return load_directory([folder])


def _run_mqtt(raw: bytes, scratch: Path) -> object:
    from healthsec.ingest.telemetry.mqtt import parse_payload

    return parse_payload("healthsec/telemetry/icu/monitor-1", raw, locator="fuzz", record=1, received=NOW)


def _run_telemetry_csv(raw: bytes, scratch: Path) -> object:
    from healthsec.ingest.telemetry.csv_source import TelemetryCsvSource

    return drain(TelemetryCsvSource(_write(scratch, "in.csv", raw), "ton-iot").read())


def _run_netflow(raw: bytes, scratch: Path) -> object:
    """One exporter sends the bytes twice (a template in the first packet decodes the second's data)."""
    from healthsec.ingest.siem.netflow import NetflowDecoder

    decoder = NetflowDecoder("fuzz", max_held=4)
    out = decoder.feed(raw, "192.0.2.1", locator="udp:192.0.2.1", record=1, received=NOW)
    out += decoder.feed(raw, "192.0.2.1", locator="udp:192.0.2.1", record=2, received=NOW)
    return len(out) + len(decoder.flush())


def _run_syslog_receiver(raw: bytes, scratch: Path) -> object:
    """The live receiver: the bytes as one UDP datagram, then as a TCP stream (both framings)."""
    import asyncio

    from healthsec.ingest.siem.listeners import SyslogListener

    got: list[object] = []
    listener = SyslogListener("127.0.0.1", 0, got.append, got.append, max_size=16 * 1024)
    listener._message(raw[: listener.max_size], "udp:192.0.2.1")

    class Writer:  # the part of asyncio.StreamWriter the receiver uses
        def get_extra_info(self, name: str) -> object:
            return ("192.0.2.1", 514) if name == "peername" else None

        def close(self) -> None:
            pass

    async def stream() -> None:
        reader = asyncio.StreamReader(limit=listener.max_size)
        reader.feed_data(raw)
        reader.feed_eof()
        await listener._tcp(reader, Writer())  # type: ignore[arg-type]

    asyncio.run(stream())
    return len(got)


def _run_misp(raw: bytes, scratch: Path) -> object:
    """The MISP import's parsing (share_sync.import_misp): the event to STIX objects, then its TLP tags; a
    refusal must name the input it refuses."""
    import orjson

    from healthsec.share.misp import MispFormatError, from_misp_event, misp_tlp

    try:
        objects = from_misp_event(raw, source="partner-event.json")
    except MispFormatError as exc:
        if not str(exc).startswith("partner-event.json: "):
            raise AssertionError(f"the MISP error does not name the input: {exc}") from None
        raise
    return len(objects), misp_tlp(orjson.loads(raw))


def _allowed_stix() -> tuple[type[BaseException], ...]:
    from healthsec.share.stix_import import BundleRejected

    return (BundleRejected,)


def _allowed_taxii() -> tuple[type[BaseException], ...]:
    from healthsec.share.taxii_http import TaxiiError

    return (TaxiiError,)


def _allowed_misp() -> tuple[type[BaseException], ...]:
    from healthsec.share.misp import MispFormatError

    return (MispFormatError,)


def _allowed_csaf() -> tuple[type[BaseException], ...]:
    from healthsec.ingest.intel.csaf import CsafError

    return (CsafError,)


def targets() -> list[Target]:
    """Every fuzzed parser (``syslog`` reads log files, ``syslog-receiver`` is the live receiver)."""
    return [
        Target("hl7-file", _hl7_seeds, _run_hl7),
        Target("hl7-mllp", _mllp_seeds, _run_mllp),
        Target("hl7-pcap", _pcap_seeds, _run_hl7_pcap),
        Target("dicom-file", _dicom_seeds, _run_dicom, examples=30),
        Target("dicom-pdu", _pdu_seeds, _run_dicom_pdu, examples=10),
        Target("evtx", _evtx_seeds, _log_runner("in.evtx", "evtx"), examples=30),
        Target("json-logs", _otrf_json_seeds, _log_runner("in.json", "json"), json_seeds=True),
        Target("syslog", _syslog_seeds, _log_runner("in.log", "syslog")),
        Target("zeek-logs", _zeek_seeds, _log_runner("conn.log", "zeek")),
        Target("flow-csv", _flow_csv_seeds, _run_flow_csv, examples=40),
        Target("pcap-flows", _pcap_seeds, _run_pcap_flows, examples=4),
        Target("stix-bundle", _stix_seeds, _run_stix, _allowed_stix(), json_seeds=True),
        Target("taxii-envelope", _envelope_seeds, _run_envelope, _allowed_taxii(), json_seeds=True),
        Target("misp", _misp_seeds, _run_misp, _allowed_misp(), json_seeds=True, examples=30),
        Target("csaf", _csaf_seeds, _run_csaf, _allowed_csaf(), json_seeds=True, examples=15),
        Target("fhir-auditevent", _fhir_seeds, _run_fhir, json_seeds=True, examples=40),
        Target("fhir-bundles", _fhir_bundle_seeds, _run_fhir_bundles, json_seeds=True),
        Target("mqtt-payload", _mqtt_seeds, _run_mqtt, json_seeds=True),
        Target("telemetry-csv", _telemetry_csv_seeds, _run_telemetry_csv),
        Target("netflow", _netflow_seeds, _run_netflow),
        Target("syslog-receiver", _syslog_receiver_seeds, _run_syslog_receiver),
    ]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one input did: ``crash`` holds the unexpected exception (type and message), if any."""

    allowed_error: bool
    crash: str | None
    peak_bytes: int | None


def run_one(target: Target, data: bytes, scratch: Path, *, measure_memory: bool = False) -> Outcome:
    """Run one input through ``target``; classify the result (never raises for the input's sake)."""
    import tracemalloc

    if measure_memory:
        tracemalloc.start()
    try:
        target.run(data, scratch)
        outcome = Outcome(False, None, None)
    except target.allowed:
        outcome = Outcome(True, None, None)
    except Exception as exc:  # the finding: a crash the parser should have turned into its error
        outcome = Outcome(False, f"{type(exc).__name__}: {str(exc)[:300]}", None)
    finally:
        peak = tracemalloc.get_traced_memory()[1] if measure_memory else None
        if measure_memory:
            tracemalloc.stop()
    return Outcome(outcome.allowed_error, outcome.crash, peak)
