"""Clinical protocol benchmark: HL7 v2 and DICOM throughput, detection on generated attacks, false positives.

Benign data: the CDC HL7 v2 samples and the pydicom/pynetdicom DICOM test files (../shared/data).
Attacks: healthsec.testing.hl7_attacks / dicom_attacks, inserted into those real carriers. The
detectors and the generators were written by the same engineer, so detection rates here are a
regression check, not an independent estimate; false positives are measured on untouched benign data.
Speed is reported as a ratio against a reference run in the same script (hl7apy parsing; plain pydicom
reading), never as a pass/fail. At the end, benchmarks/clinical_fhir_iomt.py (FHIR AuditEvent and
telemetry figures) runs if present.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import random
import sys
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pydicom

from healthsec.detect.clinical.dicom import DicomDetector
from healthsec.detect.clinical.hl7 import HL7Detector
from healthsec.ingest.dicom import DicomMonitor, file_event
from healthsec.ingest.hl7 import HL7FileSource, HL7PcapSource, message_event
from healthsec.model import Alert, ClinicalMessage, Event, ParseError
from healthsec.testing import dicom_attacks as dat
from healthsec.testing.hl7_attacks import generate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _hl7_fresh(base: HL7Detector) -> HL7Detector:
    return HL7Detector(senders=base.senders, applications=base.applications, facilities=base.facilities)


def hl7_section(data: Path, repeats: int) -> None:
    root = data / "hl7v2-fhir-samples-cdc" / "examples"
    events = [e for e in HL7FileSource([root]).read() if isinstance(e, ClinicalMessage)]
    broken_upstream = [
        e for e in events if "/Test/Message/" in (e.provenance.locator if e.provenance else "")
    ]
    benign = [e for e in events if e not in broken_upstream]
    texts = [str(e.fields["text"]) for e in benign]
    print("== HL7 v2 ==")
    print(
        f"benign messages: {len(benign)} "
        f"(from {len({e.provenance.locator for e in benign if e.provenance})} files);"
        f" upstream deliberately broken test messages kept apart: {len(broken_upstream)}"
    )

    # Throughput: parse + detect, against hl7apy parsing alone as the reference.
    det = HL7Detector()
    det.fit(benign)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    n = 0
    for _ in range(repeats):
        live = _hl7_fresh(det)
        for i, text in enumerate(texts):
            live.detect([message_event(text, source="bench", locator="mem", record=i, received=now)])
            n += 1
    ours = n / (time.perf_counter() - t0)
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message

    t0 = time.perf_counter()
    ok = 0
    for text in texts:
        try:
            parse_message(text, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False)
            ok += 1
        except Exception:  # hl7apy refuses some real samples; count them
            pass
    ref = len(texts) / (time.perf_counter() - t0)
    mb = sum(len(t) for t in texts) / 1e6
    print(
        f"throughput parse+detect: {ours:,.0f} messages/s ({mb:.2f} MB per pass, {repeats} passes); "
        f"reference hl7apy parse only: {ref:,.0f} messages/s -> ratio {ours / ref:.1f}x "
        f"(hl7apy parsed {ok}/{len(texts)})"
    )

    # False positives on untouched benign messages.
    fp_in = [e for e in benign if _hl7_fresh(det).detect([e])]
    print(
        f"false positives, baseline learnt on the same benign messages: {len(fp_in)}/{len(benign)} messages "
        f"({', '.join(sorted({a.detector for e in fp_in for a in _hl7_fresh(det).detect([e])}))})"
    )
    files = sorted({e.provenance.locator for e in benign if e.provenance and e.provenance.locator})
    rng = random.Random(42)
    rng.shuffle(files)
    train_files = set(files[: len(files) // 2])
    train = [e for e in benign if e.provenance and e.provenance.locator in train_files]
    test = [e for e in benign if e not in train]
    held = HL7Detector()
    held.fit(train)
    fp_rules: Counter[str] = Counter()
    flagged = 0
    for e in test:
        alerts = _hl7_fresh(held).detect([e])
        flagged += bool(alerts)
        fp_rules.update(a.detector for a in alerts)
    print(
        f"false positives, held-out split (seeded 50/50 by file, seed 42): {flagged}/{len(test)} messages; "
        f"by rule {dict(fp_rules)}  (unknown-sender/unseen-type: senders absent from the training half)"
    )
    stateless = [e for e in test if HL7Detector().detect([e])]
    print(f"false positives without any baseline (stateless rules only): {len(stateless)}/{len(test)}")
    caught = sum(1 for e in broken_upstream if HL7Detector().detect([e]))
    print(f"upstream deliberately broken test messages flagged malformed: {caught}/{len(broken_upstream)}")

    # Detection on generated attacks (carriers: benign messages without structural errors).
    carriers = [str(e.fields["text"]) for e in benign if not e.fields["errors"]]
    attacks = generate(carriers, per_attack=10, seed=7)
    hit: Counter[str] = Counter()
    total: Counter[str] = Counter()
    rules: dict[str, Counter[str]] = defaultdict(Counter)
    for atk in attacks:
        live = _hl7_fresh(det)
        alerts: list[Alert] = []
        for i, msg in enumerate(atk.messages):
            alerts += live.detect(
                [message_event(msg, source="attack", locator=atk.name, record=i, received=now)]
            )
        total[atk.name] += 1
        hit[atk.name] += bool(alerts)
        rules[atk.name].update({a.detector for a in alerts})
    print("detection on generated attacks (baseline: all benign messages; 10 instances each, seed 7):")
    for name in total:
        print(f"  {name:26s} {hit[name]:3d}/{total[name]:<3d} rules {dict(rules[name])}")
    print(f"  overall {sum(hit.values())}/{sum(total.values())}")
    pcap = data / "protocol-pcaps-ndpi" / "pcap" / "hl7.pcap"
    if pcap.exists():
        items = list(HL7PcapSource([pcap]).read())
        msgs = [i for i in items if isinstance(i, ClinicalMessage)]
        print(
            f"pcap {pcap.name}: {len(msgs)} messages ({', '.join(m.message_type for m in msgs)}), "
            f"{sum(isinstance(i, ParseError) for i in items)} parse errors"
        )


def dicom_files_section(data: Path, repeats: int) -> None:
    root = data / "dicom-samples"
    paths = sorted(p for p in root.rglob("*") if p.is_file())
    blobs = [(str(p.relative_to(root)), p.read_bytes()) for p in paths]
    now = datetime.now(UTC)
    print("== DICOM files ==")
    t0 = time.perf_counter()
    results: list[ClinicalMessage | ParseError] = []
    for _ in range(repeats):
        results = [file_event(b, source="bench", locator=name, received=now) for name, b in blobs]
    ours = repeats * len(blobs) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _, b in blobs:
            with contextlib.suppress(Exception):  # the reference only times reading
                pydicom.dcmread(BytesIO(b), force=True)
    ref = len(blobs) / (time.perf_counter() - t0)
    events = [r for r in results if isinstance(r, ClinicalMessage)]
    print(
        f"inspection: {ours:,.0f} files/s over {len(blobs)} files ({repeats} passes); reference pydicom "
        f"dcmread(force) only: {ref:,.0f} files/s -> ratio {ours / ref:.2f}x; "
        f"{len(events)} DICOM, {len(blobs) - len(events)} refused as not DICOM"
    )
    det = DicomDetector()
    deliberately_bad = {
        "MR_truncated.dcm",
        "CTImageStorage_bad_meta.dcm",
        "meta_missing_tsyntax.dcm",
        "empty_charset_LEI.dcm",
        "rtplan_truncated.dcm",
    }
    flagged = [(e, det.detect([e])) for e in events]
    fps = [
        (str(e.fields["file"]), [a.detector for a in al])
        for e, al in flagged
        if al and Path(str(e.fields["file"])).name not in deliberately_bad
    ]
    known = [
        str(e.fields["file"])
        for e, al in flagged
        if al and Path(str(e.fields["file"])).name in deliberately_bad
    ]
    print(f"false positives on benign sample files: {len(fps)}/{len(events) - len(known)} {fps}")
    print(f"known-malformed sample files flagged: {len(known)} {sorted(known)}")
    carriers = [
        (str(e.fields["file"]), b)
        for e, (_, b) in zip([r for r in results], blobs, strict=True)
        if isinstance(e, ClinicalMessage) and e.fields["has_meta"] and not e.fields["malformed"]
    ][:40]
    hit: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for atk in dat.file_attacks(carriers):
        ev = file_event(atk.data, source="attack", locator=atk.carrier, received=now)
        total[atk.name] += 1
        hit[atk.name] += isinstance(ev, ParseError) or bool(det.detect([ev]))
    print(f"detection on generated file attacks ({len(carriers)} clean carriers):")
    for name in total:
        print(f"  {name:26s} {hit[name]:3d}/{total[name]}")


def dicom_network_section(data: Path) -> None:
    print("== DICOM network (pynetdicom SCU -> healthsec monitor on 127.0.0.1, locally generated) ==")
    root = data / "dicom-samples" / "pydicom_test_files"
    datasets = [pydicom.dcmread(root / n) for n in ("CT_small.dcm", "MR_small.dcm")]
    studies = [f"1.2.826.0.1.3680043.8.498.{1000 + i}" for i in range(5)]

    def run(det: DicomDetector | None, action: object, *args: object) -> tuple[list[Event], list[Alert]]:
        events: list[Event] = []
        alerts: list[Alert] = []
        mon = DicomMonitor(
            port=0,
            detectors=[det] if det else [],
            on_event=events.append,
            on_alert=alerts.append,
            move_destinations={"VIEWER1": ("127.0.0.1", 9)},
        )
        mon.start()
        try:
            action(mon.host, mon.port, "HEALTHSEC", *args)  # type: ignore[operator]
            time.sleep(0.3)
        finally:
            mon.stop()
        return events, alerts

    train, _ = run(None, dat.benign_session, datasets, studies)
    det = DicomDetector()
    det.fit(train)
    ev2, fp = run(DicomDetector(aes=det.aes), dat.benign_session, datasets, studies)
    print(f"baseline from one benign session: {len(train)} events, AE titles {sorted(det.aes)}")
    print(f"false positives on a second benign session: {len(fp)} alerts over {len(ev2)} events")
    for name, (fn, techniques) in dat.SCENARIOS.items():
        args: tuple[object, ...] = (datasets[0],) if name == "unexpected-store" else ()
        _, alerts = run(DicomDetector(aes=det.aes), fn, *args)
        print(
            f"  {name:26s} detected={'yes' if alerts else 'NO '} "
            f"rules {sorted({a.detector for a in alerts})} expected {techniques}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--repeats", type=int, default=5, help="passes over the samples for throughput")
    args = parser.parse_args(argv)
    hl7_section(args.data, args.repeats)
    dicom_files_section(args.data, args.repeats)
    dicom_network_section(args.data)
    other = Path(__file__).with_name("clinical_fhir_iomt.py")
    if other.exists():
        spec = importlib.util.spec_from_file_location("clinical_fhir_iomt", other)
        if spec and spec.loader:
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            print("== FHIR AuditEvent and IoMT telemetry (benchmarks/clinical_fhir_iomt.py) ==", flush=True)
            return int(module.main([]) or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
