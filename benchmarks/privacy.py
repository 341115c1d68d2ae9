"""Privacy transforms: PHI scrubber recall on public synthetic clinical data and false positives on ATT&CK
prose, IP pseudonymisation and exit-door throughput against reference runs, DP count error.

    python3 benchmarks/privacy.py [--data ../shared/data]

Speed is reported as a ratio against a reference run in this script (same machine, same moment).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import ipaddress
import json
import random
import re
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import stix2
from yacryptopan import CryptoPAn

from healthsec.privacy.dp import PrivacyBudget, dp_counts
from healthsec.privacy.phi import _RULES, person_values, scrub_obj, scrub_text
from healthsec.privacy.pseudonymise import IpPseudonymiser, SharingKeys
from healthsec.share.outbound import outbound
from healthsec.share.policy import TLP, PartnerPolicy
from healthsec.share.stix import export_bundle
from healthsec.share.stix_sample import sample_alerts, sample_incident

KEYS = SharingKeys.from_secret(b"benchmark-community-key-0123456789abcdef")


def _present(value: str, text: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text, re.IGNORECASE) is not None


def _ndjson(folder: Path, name: str) -> list[dict[str, Any]]:
    with gzip.open(folder / f"{name}.000.ndjson.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def synthea(data: Path) -> None:
    folder = data / "fhir-bulk-synthea-10-patients"
    patients = {p["id"]: p for p in _ndjson(folder, "Patient")}
    related: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rtype in ("Encounter", "DocumentReference", "Condition", "Procedure"):
        for res in _ndjson(folder, rtype):
            pid = str(res.get("subject", {}).get("reference", "")).removeprefix("Patient/")
            if pid in patients:
                for c in res.get("content", []):
                    att = c.get("attachment", {})
                    att["x_note_text"] = base64.b64decode(att["data"]).decode("utf-8")
                related[pid].append(res)
    total = left_full = left_text_only = 0
    t0 = time.perf_counter()
    nbytes = 0
    for pid, patient in patients.items():
        bundle = {"resourceType": "Bundle", "entry": [{"resource": r} for r in [patient, *related[pid]]]}
        raw = json.dumps(bundle)
        nbytes += len(raw)
        values = [v for v in person_values(bundle) if len(v) >= 4 and _present(v, raw)]
        after = json.dumps(scrub_obj(bundle))
        notes = "\n".join(c["attachment"]["x_note_text"] for r in related[pid] for c in r.get("content", []))
        notes_text_only = scrub_text(notes)  # regexes alone, without the patient's own values
        total += len(values)
        left_full += sum(_present(v, after) for v in values)
        left_text_only += sum(_present(v, notes_text_only) for v in values if _present(v, notes))
    dt = time.perf_counter() - t0
    print(
        f"Synthea FHIR, {len(patients)} patients, {sum(map(len, related.values()))} related resources "
        f"(Encounter, DocumentReference with decoded notes, Condition, Procedure), all records:"
    )
    print(
        f"  identifying values present before: {total}; left after scrub_obj: {left_full} "
        f"(recall {1 - left_full / total:.4f})"
    )
    in_notes = sum(
        1
        for pid in patients
        for v in person_values({"p": patients[pid]})
        if len(v) >= 4
        and _present(
            v, "\n".join(c["attachment"]["x_note_text"] for r in related[pid] for c in r.get("content", []))
        )
    )
    print(
        f"  the same values in the notes, regex patterns only (no patient context): {in_notes} present, "
        f"{left_text_only} left (recall {1 - left_text_only / max(in_notes, 1):.4f})"
    )
    print(f"  scrub_obj + checks over {nbytes / 1e6:.1f} MB of JSON in {dt:.1f} s")


def _component(field: str, n: int) -> str:
    parts = field.split("~")[0].split("^")
    return parts[n].strip() if n < len(parts) else ""


def cdc_hl7(data: Path) -> None:
    files = sorted((data / "hl7v2-fhir-samples-cdc" / "examples").rglob("*.hl7"))
    total = left = 0
    with_pid = 0
    for path in files:
        raw = path.read_text(encoding="utf-8", errors="replace")
        values: set[str] = set()
        for seg in re.split(r"[\r\n]+", raw):
            f = seg.split("|")
            if f[0] == "PID" and len(f) >= 8:
                vals = [_component(f[3], 0), _component(f[5], 0), _component(f[5], 1), f[7][:8]]
                if len(f) > 11:
                    vals.append(_component(f[11], 0))
                values.update(v for v in vals if len(v) >= 3)
        if not values:
            continue
        with_pid += 1
        after = scrub_text(raw)
        total += len(values)
        left += sum(v in after for v in values)
    print(
        f"CDC HL7 v2 samples: {len(files)} files, {with_pid} with a PID segment; PID-3/5/7/11 values "
        f"{total}, left after scrub_text {left} (recall {1 - left / max(total, 1):.4f})"
    )


def attack_false_positives() -> None:
    from healthsec.ingest.attack_data import load_attack

    kb = load_attack()
    techniques = kb.techniques()
    changed = 0
    labels: Counter[str] = Counter()
    for t in techniques:
        text = f"{t.name}. {t.description}"
        out = scrub_text(text)
        if out != text:
            changed += 1
            labels.update(re.findall(r"\[REDACTED-([A-Z-]+)\]", out))
    print(
        f"False positives on security prose: {changed} of {len(techniques)} ATT&CK technique descriptions "
        f"altered ({changed / len(techniques):.3f}); redactions by rule: {dict(labels.most_common())}"
    )


def ip_speed() -> None:
    rng = random.Random(7)
    ips = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(20_000)]
    ref = CryptoPAn(KEYS.ip_key)
    t0 = time.perf_counter()
    for ip in ips:
        ref.anonymize(ip)
    t_ref = time.perf_counter() - t0
    ours = IpPseudonymiser(KEYS.ip_key)
    t0 = time.perf_counter()
    for ip in ips:
        ours.ip(ip)
    t_cold = time.perf_counter() - t0
    flows = [rng.choice(ips[:2_000]) for _ in range(200_000)]  # a capture: few hosts, many flows
    warm = IpPseudonymiser(KEYS.ip_key)
    t0 = time.perf_counter()
    for ip in flows:
        warm.ip(ip)
    t_warm = time.perf_counter() - t0
    print(
        f"IP pseudonymisation: reference yacryptopan {len(ips) / t_ref:,.0f} new IPs/s; ours cold "
        f"{len(ips) / t_cold:,.0f}/s (x{t_ref / t_cold:.2f}); 200,000 flow addresses over 2,000 hosts "
        f"{len(flows) / t_warm:,.0f}/s (x{(t_ref / len(ips)) / (t_warm / len(flows)):.1f} per address)"
    )


def door_speed() -> None:
    alerts = sample_alerts(1500)
    bundle = export_bundle([sample_incident(alerts)], alerts, producer="General Hospital", tlp=TLP.GREEN)
    objects = bundle["objects"]
    partner = PartnerPolicy("b", "identity--22222222-2222-4222-8222-222222222222", TLP.AMBER)
    t0 = time.perf_counter()
    cleared = outbound(objects, partner, KEYS)
    t_door = time.perf_counter() - t0
    sample = objects[:2000]
    t0 = time.perf_counter()
    for obj in sample:
        stix2.parse(obj, allow_custom=True)
    t_ref = (time.perf_counter() - t0) * len(objects) / len(sample)
    print(
        f"Exit door (privacy + policy) on {len(objects):,} STIX objects: "
        f"{len(objects) / t_door:,.0f} objects/s "
        f"({len(cleared.objects):,} out); reference stix2.parse one by one {len(objects) / t_ref:,.0f}/s "
        f"(door x{t_ref / t_door:.1f})"
    )


def dp_error() -> None:
    for eps in (1.0, 0.5, 0.1):
        budget = PrivacyBudget(total=1e9)
        errs = [abs(dp_counts({"x": 100}, eps, budget)["x"] - 100) for _ in range(2000)]
        print(
            f"DP count (OpenDP Laplace, sensitivity 1) epsilon {eps}: mean absolute error "
            f"{statistics.mean(errs):.2f}, 95th percentile {sorted(errs)[1899]}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = ap.parse_args()
    print(f"PHI rules: {len(_RULES)} patterns")
    synthea(args.data)
    cdc_hl7(args.data)
    attack_false_positives()
    ip_speed()
    door_speed()
    dp_error()


if __name__ == "__main__":
    main()
