"""Packet captures (pcap/pcapng, optionally .gz) -> bidirectional flows with nDPI labels (nfstream)."""

from __future__ import annotations

import gzip
import shutil
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from healthsec.ingest.flows.formats import PCAP
from healthsec.ingest.flows.table import FlowFormatError, FlowTable, _finish
from healthsec.model.capture import Capture

PCAP_MAGICS = (
    b"\xd4\xc3\xb2\xa1",
    b"\xa1\xb2\xc3\xd4",
    b"\x4d\x3c\xb2\xa1",
    b"\xa1\xb2\x3c\x4d",
    b"\x0a\x0d\x0d\x0a",
)


def pcap_frame(path: Path) -> pl.DataFrame:
    """nfstream's flow frame of one capture; raises FlowFormatError for empty, truncated or non-pcap files."""
    from nfstream import NFStreamer  # heavy import, only when a capture is read

    with tempfile.TemporaryDirectory(prefix="healthsec-pcap-") as tmp:
        target = path
        if path.suffix == ".gz":
            target = Path(tmp) / path.stem
            try:
                with gzip.open(path) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
            except (OSError, EOFError) as exc:
                raise FlowFormatError(f"{path}: not a readable gzip file ({exc})") from exc
        with target.open("rb") as fh:
            magic = fh.read(4)
        if not magic:
            raise FlowFormatError(f"{path}: capture is empty (0 bytes)")
        if magic not in PCAP_MAGICS:
            raise FlowFormatError(f"{path}: not a pcap/pcapng file (magic {magic.hex()})")
        try:
            streamer = NFStreamer(source=str(target), statistical_analysis=True, n_dissections=20, n_meters=1)
            pdf = streamer.to_pandas()
        except (ValueError, OSError, RuntimeError) as exc:
            raise FlowFormatError(f"{path}: capture could not be read: {exc}") from exc
    if pdf is None or len(pdf) == 0:
        return pl.DataFrame()
    return pl.from_pandas(pdf)


def read_pcap_table(path: Path, label_column: str | None = None) -> FlowTable:
    """Flows of a capture as a FlowTable. Captures carry no labels: ``label_column`` must be None."""
    if label_column is not None:
        raise FlowFormatError(f"{path}: packet captures carry no label column; train on them unlabelled")
    frame = pcap_frame(path)
    if frame.height == 0:
        raise FlowFormatError(f"{path}: capture holds no IP flows")
    table = _finish(frame, PCAP, str(path), None, [], np.arange(1, frame.height + 1, dtype=np.int64))
    if "requested_server_name" in frame.columns:
        table.meta = table.meta.with_columns(frame["requested_server_name"].alias("server_name"))
    return table


def read_capture(path: Path) -> Capture:
    """A capture for device identification: its flows' statistics, server names and applications."""
    table = read_pcap_table(path)
    names = (
        table.meta["server_name"].to_list() if "server_name" in table.meta.columns else [None] * len(table)
    )
    apps = table.meta["application"].to_list() if "application" in table.meta.columns else [None] * len(table)
    clean = [None if n is None or not str(n).strip() else str(n) for n in names]
    clients = table.meta["src_ip"].to_list() if "src_ip" in table.meta.columns else []
    return Capture(name=str(path), frame=table.frame, server_names=clean, applications=apps, clients=clients)
