"""Columnar flow reading: one CSV / Zeek / labelled file -> a FlowTable (features, labels apart, metadata)."""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from healthsec.ingest.flows.columns import exclusions
from healthsec.ingest.flows.formats import (
    BENIGN_NAMES,
    NSL_KDD_CATEGORIES,
    Layout,
)
from healthsec.model import ParseError

MAX_CATEGORIES = 256  # a text column with more distinct values is an identifier, not a category


class FlowFormatError(ValueError):
    """The file cannot be read as the format asked for (empty, missing columns, not CSV); names the file."""


@dataclass
class FlowTable:
    """Flows of one file as columns. ``frame`` holds features only: labels are kept apart in ``labels``."""

    source: str
    path: str
    frame: pl.DataFrame  # feature columns: Float64 (numeric, nulls = missing) or String (categorical)
    meta: pl.DataFrame  # Flow fields (src_ip, dst_ip, ...), one row per flow, same order as frame
    categorical: tuple[str, ...] = ()
    labels: list[str] | None = None  # per-row category, "benign" for normal traffic; None = unlabelled
    attack_names: list[str] | None = None  # the data set's own attack name, where it differs from category
    errors: list[ParseError] = field(default_factory=list)  # records skipped, each naming line and reason
    notes: list[str] = field(default_factory=list)  # counted repairs: non-numbers and infinities -> missing
    record_numbers: npt.NDArray[np.int64] | None = None  # 1-based line/record number of each row

    def __len__(self) -> int:
        return self.frame.height

    @property
    def is_attack(self) -> npt.NDArray[np.int8] | None:
        if self.labels is None:
            return None
        return np.fromiter((lab != "benign" for lab in self.labels), dtype=np.int8, count=len(self.labels))


def normalise_name(name: str) -> str:
    """'Dst Port' / ' Destination Port' -> 'dst_port' / 'destination_port'."""
    return re.sub(r"[^0-9a-z.@]+", "_", name.strip().lower()).strip("_")


def normalise_label(value: object) -> str | None:
    """Labels to lower-case category names; every spelling of normal traffic becomes 'benign'."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if not text:
        return None
    return "benign" if text in BENIGN_NAMES else text


def _open_text(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise FlowFormatError(f"{path}: not a readable gzip file ({exc})") from exc
    return raw


def _line_check(
    raw: bytes, width: int, path: str, header: bool, source: str
) -> tuple[list[int], list[ParseError]]:
    """Slow path (only when the fast reader saw trouble): find rows with the wrong number of fields."""
    bad: list[int] = []
    errors: list[ParseError] = []
    reader = csv.reader(io.StringIO(raw.decode("utf-8", errors="replace")))
    offset = 1 if header else 0
    for i, row in enumerate(reader):
        if header and i == 0:
            continue
        if len(row) != width and row:
            bad.append(i - offset)
            errors.append(
                ParseError(
                    source=source,
                    locator=path,
                    record=i + 1,
                    reason=f"expected {width} fields, found {len(row)}",
                    raw=",".join(row)[:200],
                )
            )
    return bad, errors


def _read_csv(
    raw: bytes, path: str, names: Sequence[str] | None, source: str
) -> tuple[pl.DataFrame, list[ParseError], npt.NDArray[np.int64]]:
    """Read CSV bytes with polars; ragged rows are skipped and reported by line number."""
    header = names is None
    cols_arg = list(names) if names else None
    df: pl.DataFrame | None
    try:  # fast path: polars' own type inference (first 100 rows)
        df = pl.read_csv(raw, has_header=header, new_columns=cols_arg)
    except pl.exceptions.PolarsError:
        try:  # a later row disagrees with the inferred types: read as text, cast (and count) later
            df = pl.read_csv(raw, has_header=header, new_columns=cols_arg, infer_schema=False)
        except pl.exceptions.PolarsError:
            df = None
    if df is not None and not (df.width and df[df.columns[-1]].null_count()):
        if names is not None and df.width != len(names):
            raise FlowFormatError(f"{path}: expected {len(names)} columns, found {df.width}")
        return df, [], np.arange(1 + header, df.height + 1 + header, dtype=np.int64)
    # Trouble (ragged rows or mixed types): read everything as text with the csv module, skip bad rows.
    text_rows = list(csv.reader(io.StringIO(raw.decode("utf-8", errors="replace"))))
    cols = list(names) if names else [c.lstrip("\ufeff") for c in text_rows[0]]
    body = text_rows[1:] if header else text_rows
    _, errors = _line_check(raw, len(cols), path, header, source)
    good = [(i, r) for i, r in enumerate(body) if len(r) == len(cols)]
    data = {c: [r[j] for _, r in good] for j, c in enumerate(cols)}
    df = pl.DataFrame(data, schema=dict.fromkeys(cols, pl.String))
    df = df.with_columns(
        pl.when(pl.col(c).is_in(["", "NaN", "nan", "NA", "null"])).then(None).otherwise(pl.col(c)).alias(c)
        for c in cols
    )
    # Columns that are numbers in every good row become numbers again.
    casts = []
    for c in cols:
        cast = df[c].cast(pl.Float64, strict=False)
        if cast.null_count() == df[c].null_count():
            casts.append(cast.alias(c))
    if casts:
        df = df.with_columns(casts)
    lines = np.array([i + 1 + header for i, _ in good], dtype=np.int64)
    return df, errors, lines


def _resolve(columns: Sequence[str], spec: str) -> str | None:
    for alt in spec.split("|"):
        if alt in columns:
            return alt
    return None


def _finish(
    df: pl.DataFrame,
    layout: Layout,
    path: str,
    label_column: str | None,
    errors: list[ParseError],
    lines: npt.NDArray[np.int64],
    keep_columns: Sequence[str] = (),
    notes: list[str] | None = None,
) -> FlowTable:
    """Split a raw frame into features, labels and metadata; numbers to Float64, bad values counted."""
    if df.height == 0:
        raise FlowFormatError(f"{path}: no flow records (empty file or header only)")
    missing = [c for c in layout.required if c not in df.columns]
    if missing:
        raise FlowFormatError(f"{path}: not {layout.name} data, missing columns: {', '.join(missing)}")
    label_col = label_column or layout.label
    if label_column is not None and label_column not in df.columns:
        raise FlowFormatError(
            f"{path}: label column {label_column!r} not found (columns: "
            f"{', '.join(df.columns[:12])}{'...' if df.width > 12 else ''})"
        )
    if label_col is not None and label_col not in df.columns:
        label_col = None
    notes = list(notes or [])
    labels: list[str] | None = None
    names: list[str] | None = None
    if label_col is not None:
        text = df[label_col].cast(pl.String).str.strip_chars().str.to_lowercase()
        text = text.replace("", None)
        raw_labels = (
            text.replace(list(BENIGN_NAMES), "benign").replace(["1", "true", "1.0"], "attack").to_list()
        )
        binary = layout.binary_label if layout.binary_label in df.columns else None
        if binary is not None:  # the 0/1 column decides benign vs attack where the category is blank
            flags = df[binary].cast(pl.Float64, strict=False).to_list()
            raw_labels = [
                ("benign" if f == 0 else (lab if lab not in (None, "benign") else "attack"))
                if f is not None
                else lab
                for lab, f in zip(raw_labels, flags, strict=True)
            ]
        keep = [i for i, lab in enumerate(raw_labels) if lab is not None]
        if len(keep) < len(raw_labels):
            for i, lab in enumerate(raw_labels):
                if lab is None:
                    errors.append(
                        ParseError(
                            source=layout.name,
                            locator=path,
                            record=int(lines[i]),
                            reason=f"no value in label column {label_col!r}",
                        )
                    )
            idx = pl.Series(keep, dtype=pl.UInt32)
            df = df[idx]
            lines = lines[keep]
            raw_labels = [raw_labels[i] for i in keep]
        names = [lab for lab in raw_labels if lab is not None]
        if layout.name == "nsl-kdd":
            labels = [lab if lab == "benign" else NSL_KDD_CATEGORIES.get(lab, "attack") for lab in names]
        else:
            labels = names
            names = None
    meta_cols: dict[str, str] = {}
    for fld, spec in layout.meta.items():
        col = _resolve(df.columns, spec)
        if col is not None:
            meta_cols[fld] = col
    kept = set(keep_columns)
    drop = (set(layout.drop) - kept) | {label_col, layout.binary_label} - {None}
    generic = layout.name in ("csv", "cicflowmeter")
    for ex in exclusions(df.drop([c for c in drop if c in df.columns]), label_col, keep_columns, generic):
        drop.add(ex.column)
        notes.append(f"column {ex.column!r} not used as a feature: {ex.reason}; --keep-column overrides")
    categorical: list[str] = []
    feats: list[pl.Series] = []
    for col in df.columns:
        if col in drop:
            continue
        s = df[col]
        if col in layout.categorical or (
            s.dtype == pl.String
            and layout.name != "nsl-kdd"
            and col not in layout.categorical
            and _is_categorical(s)
        ):
            categorical.append(col)
            feats.append(s.cast(pl.String).fill_null("-"))
            continue
        if s.dtype == pl.String:
            if layout.name in ("csv", "cicflowmeter", "zeek", "pcap"):
                num = s.cast(pl.Float64, strict=False)
                if num.null_count() - s.null_count() > 0.5 * max(1, s.len() - s.null_count()):
                    notes.append(f"column {col!r} is text with many distinct values; not used as a feature")
                    continue
            else:
                num = s.cast(pl.Float64, strict=False)
        else:
            num = s.cast(pl.Float64, strict=False)
        bad_text = num.null_count() - s.null_count()
        if bad_text:
            notes.append(f"column {col!r}: {bad_text} values were not numbers (treated as missing)")
        nonfinite = int((num.is_nan() | num.is_infinite()).sum())
        if nonfinite:
            notes.append(f"column {col!r}: {nonfinite} NaN/infinite values (treated as missing)")
            num = pl.Series(col, np.where(np.isfinite(num.to_numpy()), num.to_numpy(), np.nan)).fill_nan(None)
        feats.append(num.alias(col))
    if not feats:
        dropped = [n for n in notes if "not used as a feature" in n]
        raise FlowFormatError(
            f"{path}: no usable feature columns"
            + (f" ({'; '.join(dropped)})" if dropped else f" (columns: {', '.join(df.columns[:12])})")
        )
    meta = df.select([pl.col(c).alias(f) for f, c in meta_cols.items()]) if meta_cols else pl.DataFrame()
    return FlowTable(
        source=layout.name,
        path=path,
        frame=pl.DataFrame(feats),
        meta=meta,
        categorical=tuple(categorical),
        labels=labels,
        attack_names=names,
        errors=errors,
        notes=notes,
        record_numbers=lines,
    )


def training_frame(tables: Sequence[FlowTable]) -> tuple[pl.DataFrame, list[str], list[str] | None]:
    """Several tables as one training set: (features, categorical columns, labels or None).

    Columns and categorical columns keep their first-seen order (the order a model's features take), so
    one file through ``healthsec train flows`` and the same file in ``benchmarks/flows.py`` give one model.
    """
    if not tables:
        raise FlowFormatError("no tables to train on")
    cats: list[str] = []
    for t in tables:
        cats.extend(c for c in t.categorical if c not in cats)
    frame = (
        tables[0].frame if len(tables) == 1 else pl.concat([t.frame for t in tables], how="diagonal_relaxed")
    )
    frame = frame.with_columns([pl.col(c).cast(pl.String).fill_null("-") for c in cats if c in frame.columns])
    labelled = all(t.labels is not None for t in tables)
    labels = [lab for t in tables for lab in (t.labels or [])] if labelled else None
    return frame, cats, labels


def _is_categorical(s: pl.Series) -> bool:
    nonnull = s.drop_nulls()
    if nonnull.len() == 0:
        return False
    if nonnull.cast(pl.Float64, strict=False).null_count() < 0.5 * nonnull.len():
        return False  # mostly numbers with a few text cells: numeric
    return bool(nonnull.n_unique() <= MAX_CATEGORIES)


def _unique_names(new: list[str], old: Sequence[str]) -> dict[str, str]:
    """Renaming map that keeps names unique (CICFlowMeter 2017 repeats 'Fwd Header Length')."""
    seen: dict[str, int] = {}
    out: dict[str, str] = {}
    for n, o in zip(new, old, strict=True):
        k = seen.get(n, 0)
        seen[n] = k + 1
        out[o] = n if k == 0 else f"{n}_{k}"
    return out
