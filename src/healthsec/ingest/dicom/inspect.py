"""DICOM file inspection: executable preambles (PE/DICOM polyglot, CVE-2019-11687) and malformed elements."""

from __future__ import annotations

import hashlib
import struct
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.uid import UID

from healthsec.model import ClinicalMessage, ParseError, Provenance, stable_id

DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ".dic", ""})
# The meta elements PS3.10 7.1 makes Type 1 in every Part-10 file.
REQUIRED_META = {
    0x00020001: "File Meta Information Version",
    0x00020002: "Media Storage SOP Class UID",
    0x00020003: "Media Storage SOP Instance UID",
    0x00020010: "Transfer Syntax UID",
    0x00020012: "Implementation Class UID",
}
# Magic numbers of content that has no business in a DICOM preamble (PS3.10 allows zeros or TIFF).
EXECUTABLE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x7fELF", "elf"),
    (b"\xcf\xfa\xed\xfe", "macho"),
    (b"\xce\xfa\xed\xfe", "macho"),
    (b"\xca\xfe\xba\xbe", "macho-fat"),
    (b"#!", "script"),
    (b"PK\x03\x04", "zip"),
    (b"%PDF", "pdf"),
)
EXECUTABLE_KINDS = frozenset({"pe", "dos-mz", "elf", "macho", "macho-fat", "script"})


def classify_preamble(data: bytes) -> str:
    """``zero``, ``tiff``, ``pe`` (MZ + PE header: CVE-2019-11687), ``dos-mz``, ``elf``, ... or ``other``."""
    pre = data[:128]
    if not pre.strip(b"\x00") or not pre.strip(b" "):
        return "zero"
    if pre[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if pre[:2] == b"MZ":
        if len(pre) >= 0x40:
            (e_lfanew,) = struct.unpack_from("<I", pre, 0x3C)
            if 0 < e_lfanew < len(data) - 4 and data[e_lfanew : e_lfanew + 4] == b"PE\x00\x00":
                return "pe"
        return "dos-mz"
    for magic, kind in EXECUTABLE_MAGIC:
        if pre.startswith(magic):
            return kind
    return "other"


def _pixel_problem(ds: Dataset) -> str | None:
    """Native (uncompressed) pixel data shorter than Rows x Columns x samples x bytes x frames."""
    if len(ds) == 0:
        return "no data set after the file meta (truncated or corrupt)"
    if "PixelData" not in ds:
        # An image SOP class without Pixel Data is not flagged: stripped test/anonymised files do that.
        image = all(k in ds for k in ("Rows", "Columns", "BitsAllocated"))
        other = any(k in ds for k in ("FloatPixelData", "DoubleFloatPixelData"))
        return "image attributes present but no Pixel Data (truncated)" if image and not other else None
    tsyntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if tsyntax is not None and UID(str(tsyntax)).is_compressed:
        return None
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.BitsAllocated)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        actual = len(ds.PixelData)
    except (AttributeError, TypeError, ValueError):
        return None
    expected = (
        rows * cols * samples * frames * bits // 8 if bits >= 8 else (rows * cols * samples * frames + 7) // 8
    )
    if str(ds.get("PhotometricInterpretation", "")).strip() == "YBR_FULL_422":
        expected = expected * 2 // 3  # 4:2:2 subsampling keeps two of every three samples
    if actual < expected:
        return f"Pixel Data is {actual} bytes, {expected} expected from its image attributes (truncated)"
    return None


def _raw_problems(ds: Dataset, data: bytes) -> list[str]:
    """Top-level elements whose value is shorter than their declared length (truncated or lying lengths).

    pydicom reads a short value silently, so the raw elements (not yet converted) are compared with
    their declared lengths; encapsulated pixel data must end with a sequence delimiter.
    """
    problems: list[str] = []
    for tag in list(ds.keys()):
        try:
            raw = ds.get_item(tag)
        except Exception as exc:  # pydicom converts some elements on access (unknown VR, bad UID)
            problems.append(f"element {tag} cannot be decoded: {type(exc).__name__}")
            continue
        if not isinstance(raw, RawDataElement) or raw.value is None:
            continue
        if raw.length == 0xFFFFFFFF:
            if int(tag) == 0x7FE00010 and raw.value_tell is not None:
                rest = data[raw.value_tell :]
                if b"\xfe\xff\xdd\xe0" not in rest and b"\xff\xfe\xe0\xdd" not in rest:
                    problems.append("encapsulated Pixel Data has no sequence delimiter (truncated)")
            continue
        if len(raw.value) < raw.length:
            problems.append(
                f"element {raw.tag} declares {raw.length} bytes but only {len(raw.value)} remain "
                "(truncated or corrupt length)"
            )
    return problems


def _element_problems(ds: Dataset) -> list[str]:
    problems: list[str] = []
    try:
        for elem in ds.iterall():
            try:
                _ = elem.value
            except Exception as exc:  # pydicom raises many types on a corrupt value
                problems.append(f"element {elem.tag} cannot be decoded: {type(exc).__name__}")
    except Exception as exc:
        problems.append(f"data set cannot be walked: {type(exc).__name__}: {str(exc)[:80]}")
    return problems


@dataclass(frozen=True, slots=True)
class Inspection:
    """What one file looked like; ``malformed`` and an executable ``preamble`` are the findings."""

    preamble: str
    has_meta: bool
    malformed: list[str]
    notes: list[str]
    dataset: Dataset | None


def _checked(ds: Dataset, data: bytes) -> list[str]:
    """Every check of a read data set; a check that a corrupt data set breaks is itself a finding."""
    checks: tuple[tuple[str, Callable[[], list[str]]], ...] = (
        ("element lengths", lambda: _raw_problems(ds, data)),
        ("element values", lambda: _element_problems(ds)),
        ("pixel data", lambda: [p] if (p := _pixel_problem(ds)) else []),
    )
    out: list[str] = []
    for name, check in checks:
        try:
            out.extend(check())
        except Exception as exc:  # found by fuzzing: ValueError/NotImplementedError from pydicom
            out.append(f"{name} cannot be checked: {type(exc).__name__}")
    return out


def inspect_bytes(data: bytes) -> Inspection:
    """Inspect one DICOM file's bytes (no I/O)."""
    preamble = classify_preamble(data) if data[128:132] == b"DICM" else "none"
    has_meta = data[128:132] == b"DICM"
    malformed: list[str] = []
    notes: list[str] = []
    ds: Dataset | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(BytesIO(data), force=True)
        except Exception as exc:  # truncated or corrupt files raise many exception types
            malformed.append(f"pydicom cannot read the file: {type(exc).__name__}: {str(exc)[:100]}")
        if ds is not None:
            malformed.extend(_checked(ds, data))
    notes.extend(str(w.message)[:120] for w in caught[:5])
    if has_meta and ds is not None:
        meta = getattr(ds, "file_meta", Dataset())
        missing = [
            f"{name} (0002,{tag & 0xFFFF:04X})" for tag, name in REQUIRED_META.items() if tag not in meta
        ]
        if missing:
            malformed.append("file meta lacks required " + ", ".join(missing))
    if not has_meta:
        notes.append("no Part-10 preamble/file meta (bare data set)")

    if preamble == "other":
        notes.append("preamble is neither zeros nor TIFF")
    return Inspection(preamble, has_meta, malformed, notes, ds)


def _standard_groups(ds: Dataset) -> bool:
    try:
        tags = list(ds.keys())
        groups = {int(t) >> 16 for t in tags}
    except Exception:
        return False
    return bool(groups & {0x0008, 0x0010, 0x0020, 0x0028})


def _looks_like_dicom(ins: Inspection) -> bool:
    if ins.has_meta:
        return True
    return ins.dataset is not None and _standard_groups(ins.dataset)


def _text(ds: Dataset | None, keyword: str) -> str | None:
    if ds is None:
        return None
    try:
        value = ds.get(keyword)
    except Exception:
        return None
    text = str(value).strip() if value is not None else ""
    return text or None


def file_event(data: bytes, *, source: str, locator: str, received: datetime) -> ClinicalMessage | ParseError:
    """One ``ClinicalMessage`` (type ``FILE``) for a DICOM file, or a ParseError if it is not DICOM."""
    ins = inspect_bytes(data)
    if not _looks_like_dicom(ins):
        return ParseError(source, locator, "not a DICOM file (no DICM marker and no DICOM elements)")
    ds = ins.dataset
    meta = getattr(ds, "file_meta", None) if ds is not None else None
    sop = _text(ds, "SOPClassUID") or (_text(meta, "MediaStorageSOPClassUID") if meta is not None else None)
    ts_uid = _text(meta, "TransferSyntaxUID") if meta is not None else None
    digest = hashlib.sha256(data).hexdigest()
    return ClinicalMessage(
        id=stable_id("dicomfile", digest, locator),
        ts=received,
        source=source,
        provenance=Provenance(source=source, locator=locator, ingested_at=received),
        protocol="dicom",
        message_type="FILE",
        sender=_text(meta, "SourceApplicationEntityTitle") if meta is not None else None,
        size=len(data),
        patient_id=_text(ds, "PatientID"),
        fields={
            "file": locator,
            "sha256": digest,
            "preamble": ins.preamble,
            "has_meta": ins.has_meta,
            "malformed": ins.malformed,
            "notes": ins.notes,
            "sop_class": sop,
            "modality": _text(ds, "Modality"),
            "transfer_syntax": ts_uid,
            "patient_authority": _text(ds, "IssuerOfPatientID"),
        },
    )


def expand_dicom_paths(paths: list[Path]) -> list[Path]:
    """Files named directly, plus every file under named directories (DICOM files often lack a suffix)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file()))
        else:
            out.append(p)
    return out


@dataclass
class DicomFileSource:
    """Inspects DICOM files; unreadable files and non-DICOM files are ParseErrors naming the file."""

    paths: list[Path]
    name: str = "dicom-file"

    def read(self) -> Iterator[ClinicalMessage | ParseError]:
        for path in expand_dicom_paths(self.paths):
            try:
                data = path.read_bytes()
                received = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            except OSError as exc:
                yield ParseError(self.name, str(path), f"cannot read file: {exc.strerror or exc}")
                continue
            yield file_event(data, source=self.name, locator=str(path), received=received)
