"""Which columns of a flow CSV may be features: label-like and identifier columns, known layouts renamed.

A generic CSV never feeds a model its answer (a second label column such as ``attack_cat`` beside
``label``) nor what merely names a row (ids, row numbers, addresses, ports, MACs, clocks): such columns are
dropped with the reason, unless the user keeps them by name. A CSV whose columns are a known layout
(NSL-KDD, UNSW-NB15) under other names or in another order is recognised from its column names and the
values of its text columns, then renamed and reordered to that layout, so a model sees exactly the
features it would see in the original files.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from healthsec.ingest.flows.formats import NSL_KDD_COLUMNS, UNSW_NB15_COLUMNS

# Whole (normalised) names that hold labels or ground truth in the data sets we know of.
LABEL_NAMES = frozenset(
    {
        "label", "labels", "attack", "attacks", "attack_cat", "attack_category", "attack_type",
        "attack_class", "attack_name", "class", "classes", "class_label", "type", "category", "subcategory",
        "sub_category", "is_attack", "attack_flag", "is_malicious", "malicious", "is_anomaly", "anomaly",
        "target", "outcome", "ground_truth", "detailed_label", "detailed-label", "tag", "threat", "verdict",
        "y", "difficulty", "difficulty_level", "traffic_type",
    }
)  # fmt: skip
# Name tokens that identify a row, an endpoint or a moment rather than describe the traffic.
IDENTIFIER_TOKENS = frozenset(
    {"ip", "ipv4", "ipv6", "addr", "address", "mac", "port", "timestamp", "time", "date", "datetime", "uid"}
)
IDENTIFIER_NAMES = frozenset(
    {
        "id", "index", "idx", "no", "row", "rowid", "row_id", "record", "flow_id", "flowid", "uid", "ts",
        "stime", "ltime", "sport", "dport", "dsport", "srcport", "dstport", "srcip", "dstip", "saddr",
        "daddr", "src", "dst", "unnamed_0", "start", "end", "first_seen", "last_seen",
    }
)  # fmt: skip


def normalise(name: str) -> str:
    """'Dst Port' / ' Destination Port' -> 'dst_port' / 'destination_port'; camelCase split."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip().lstrip("\ufeff"))
    return re.sub(r"[^0-9a-z]+", "_", spaced.lower()).strip("_")


def label_like(name: str) -> bool:
    n = normalise(name)
    return n in LABEL_NAMES or n.endswith("_label") or n.startswith("label_")


def identifier_like(name: str) -> bool:
    n = normalise(name)
    if n in IDENTIFIER_NAMES or n.endswith("_id") or n.startswith("id_"):
        return True
    return any(t in IDENTIFIER_TOKENS for t in n.split("_"))


def row_index_like(s: pl.Series) -> bool:
    """A column counting rows (0, 1, 2, ... or 1, 2, 3, ...): it numbers, it does not describe."""
    if s.dtype == pl.String or s.len() < 3 or s.null_count():
        return False
    v = s.cast(pl.Float64, strict=False).to_numpy()
    return bool(np.all(np.isfinite(v)) and v[0] in (0.0, 1.0) and np.all(np.diff(v) == 1.0))


@dataclass(frozen=True)
class Exclusion:
    column: str
    reason: str


def exclusions(
    df: pl.DataFrame, label_column: str | None, keep: Sequence[str], identifiers: bool
) -> list[Exclusion]:
    """Columns that must not be features, each with its reason; ``keep`` names override everything but
    the label column itself."""
    kept = {normalise(k) for k in keep}
    out = []
    for col in df.columns:
        if col == label_column or normalise(col) in kept:
            continue
        if label_like(col):
            out.append(Exclusion(col, "label-like (it would hand the model the answer)"))
        elif identifiers and identifier_like(col):
            out.append(Exclusion(col, "identifier (id, address, port, MAC or clock: names, not describes)"))
        elif identifiers and row_index_like(df[col]):
            out.append(Exclusion(col, "row number (counts 1 by 1)"))
    return out


# ---------------------------------------------------------------------------------- layout recognition
_ABBREV = {
    "source": "src", "destination": "dst", "dest": "dst", "service": "srv", "number": "num",
    "packets": "pkts", "packet": "pkts", "pkt": "pkts", "count": "cnt", "bytes": "bytes", "byte": "bytes",
    "protocol": "proto", "duration": "dur", "connection": "conn", "percentage": "rate", "ratio": "rate",
    "failed": "failed", "logins": "login", "files": "file", "shells": "shell", "window": "win",
}  # fmt: skip
# Values that only these categorical columns carry: how a text column is recognised whatever its name.
_VOCAB: dict[str, dict[str, frozenset[str]]] = {
    "nsl-kdd": {
        "protocol_type": frozenset({"tcp", "udp", "icmp"}),
        "flag": frozenset({"SF", "S0", "REJ", "RSTR", "RSTO", "SH", "S1", "S2", "S3", "OTH", "RSTOS0"}),
        "service": frozenset({"http", "private", "domain_u", "smtp", "ftp_data", "eco_i", "ecr_i", "other"}),
    },
    "unsw-nb15": {
        "proto": frozenset({"tcp", "udp", "unas", "arp", "ospf", "sctp", "any", "gre", "ipv6"}),
        "state": frozenset({"FIN", "INT", "CON", "REQ", "RST", "ECO", "ACC", "CLO", "PAR", "URN"}),
        "service": frozenset({"-", "dns", "http", "smtp", "ftp-data", "ftp", "ssh", "pop3", "dhcp", "ssl"}),
    },
}
_CANON: dict[str, tuple[str, ...]] = {
    "nsl-kdd": NSL_KDD_COLUMNS,
    "unsw-nb15": tuple(c for c in UNSW_NB15_COLUMNS if c != "id"),
}
_FEATURES: dict[str, frozenset[str]] = {
    "nsl-kdd": frozenset(NSL_KDD_COLUMNS[:41]),
    "unsw-nb15": frozenset(UNSW_NB15_COLUMNS[1:-2]),
}
MIN_MATCHED = 0.8  # share of a layout's columns that must be found to call the file that layout


_SHORT = {"src": "s", "dst": "d"}  # UNSW-NB15 writes sbytes/dttl where others write src_bytes/dst_ttl


def _keys(name: str) -> set[str]:
    """Spellings a column name is compared by: abbreviations unified, and src/dst also as s/d."""
    tokens = [_ABBREV.get(t, t) for t in normalise(name).split("_")]
    return {"".join(tokens), "".join(_SHORT.get(t, t) for t in tokens)}


def _same(a: str, b: str) -> bool:
    return bool(_keys(a) & _keys(b))


def _closeness(a: str, b: str) -> float:
    return max(difflib.SequenceMatcher(None, x, y).ratio() for x in _keys(a) for y in _keys(b))


@dataclass(frozen=True)
class Recognised:
    layout: str
    rename: dict[str, str]  # file column -> layout column
    by_values: tuple[str, ...]  # layout columns found from their values, not their names

    def describe(self) -> str:
        moved = sum(1 for a, b in self.rename.items() if a != b)
        values = f", by values: {', '.join(self.by_values)}" if self.by_values else ""
        total = len(_CANON[self.layout])
        return (
            f"columns recognised as the {self.layout} layout ({len(self.rename)} of {total} columns found, "
            f"{moved} under other names{values}); read as that layout, in its column order"
        )


def _text_values(s: pl.Series) -> set[str]:
    if s.dtype != pl.String:
        return set()
    return {str(v).strip() for v in s.head(5000).drop_nulls().unique().to_list()}


def recognise(df: pl.DataFrame) -> Recognised | None:
    """The known layout these columns are, under whatever names and order; None if none fits well."""
    best: Recognised | None = None
    for layout, canon in _CANON.items():
        rename: dict[str, str] = {}
        free = [c for c in df.columns]
        targets = list(canon)
        by_values: list[str] = []
        for col in list(free):  # 1. the same name, spelt alike
            hit = next((t for t in targets if _same(t, col)), None)
            if hit is not None:
                rename[col] = hit
                free.remove(col)
                targets.remove(hit)
        for t, vocab in _VOCAB[layout].items():  # 2. text columns by the values only they carry
            if t not in targets:
                continue
            scored = [(len(_text_values(df[c]) & vocab) / len(vocab), c) for c in free]
            score, col = max(scored, default=(0.0, ""))
            if score >= 0.3:
                rename[col] = t
                free.remove(col)
                targets.remove(t)
                by_values.append(t)
        pairs = sorted(((_closeness(c, t), c, t) for c in free for t in targets), reverse=True)
        for score, col, hit in pairs:  # 3. close spellings, the closest pairs first
            if score < 0.85:
                break
            if col in free and hit in targets:
                rename[col] = hit
                free.remove(col)
                targets.remove(hit)
        found = len(_FEATURES[layout] & set(rename.values()))
        if found >= MIN_MATCHED * len(_FEATURES[layout]) and (best is None or len(rename) > len(best.rename)):
            best = Recognised(layout, rename, tuple(by_values))
    return best


def apply(df: pl.DataFrame, found: Recognised) -> pl.DataFrame:
    """Rename to the layout's names and put its columns first, in its order; other columns follow."""
    out = df.rename(found.rename)
    order = [c for c in _CANON[found.layout] if c in out.columns]
    return out.select(order + [c for c in out.columns if c not in order])
