"""Telemetry CSV readers: TON_IoT files as they are, generic CSV, and malformed rows reported by line."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import pytest

from healthsec.ingest.telemetry import TelemetryCsvSource
from healthsec.model import DeviceReading, ParseError


def test_malformed_rows_are_reported_by_line_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "vitals.csv"
    path.write_text(
        "ts,device_id,heart_rate,spo2,label\n"
        "2024-01-01T00:00:00Z,mon-1,72,98,0\n"
        "2024-01-01T00:00:05Z,mon-1,abc,98,0\n"
        "2024-01-01T00:00:10Z,mon-1,72\n"
        "yesterday,mon-1,72,98,0\n"
        "2024-01-01T00:00:20,mon-1,72,98,0\n"
        "2024-01-01T00:00:25Z,mon-1,72,98,maybe\n"
        "2024-01-01T00:00:30Z,mon-1,,97,1\n"
    )
    rows = list(TelemetryCsvSource(path, "csv").read_labelled())
    good = [r for r in rows if isinstance(r.item, DeviceReading)]
    bad = [r.item for r in rows if isinstance(r.item, ParseError)]
    assert [g.item.provenance.record for g in good if g.item.provenance] == [2, 8]  # type: ignore[union-attr]
    assert [(b.record, b.locator) for b in bad] == [(n, str(path)) for n in (3, 4, 5, 6, 7)]
    assert "'heart_rate'" in bad[0].reason
    assert "fields" in bad[1].reason
    assert "timestamp" in bad[2].reason
    assert "time zone" in bad[3].reason
    assert "label" in bad[4].reason
    last = good[-1]
    assert last.item.metrics == {"heart_rate": None, "spo2": 97.0}  # type: ignore[union-attr]
    assert last.label == 1


def test_wrong_format_header_and_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    [err] = list(TelemetryCsvSource(p, "ton-iot").read())
    assert isinstance(err, ParseError)
    assert "date" in err.reason
    empty = tmp_path / "e.csv"
    empty.write_text("")
    [err2] = list(TelemetryCsvSource(empty, "csv").read())
    assert isinstance(err2, ParseError)
    assert "empty" in err2.reason
    with pytest.raises(ValueError, match="unknown telemetry format"):
        TelemetryCsvSource(p, "json")  # type: ignore[arg-type]


def test_truncated_gzip_is_reported(tmp_path: Path) -> None:
    p = tmp_path / "t.csv.gz"
    blob = gzip.compress(b"ts,x\n" + b"2024-01-01T00:00:00Z,1\n" * 1000)
    p.write_bytes(blob[: len(blob) // 2])
    [err] = list(TelemetryCsvSource(p, "csv").read())
    assert isinstance(err, ParseError)
    assert "cannot read" in err.reason


def test_ton_iot_garage_door_as_published(shared_data: Path) -> None:
    path = shared_data / "ton-iot-telemetry" / "Train_Test_IoT_Garage_Door.csv.gz"
    rows = list(TelemetryCsvSource(path, "ton-iot").read_labelled())
    assert len(rows) == 39587
    assert all(isinstance(r.item, DeviceReading) for r in rows)
    labels = Counter(r.label for r in rows)
    assert labels == {0: 15000, 1: 24587}
    first = rows[0].item
    assert isinstance(first, DeviceReading)
    assert first.device_id == "garage_door"
    assert set(first.metrics) == {"door_state", "sphone_signal"}  # date/time are not metrics
    # 'false  ', 'true  ', '0', '1' all become 0.0 / 1.0: the spelling differs between capture days.
    values = {r.item.metrics["sphone_signal"] for r in rows if isinstance(r.item, DeviceReading)}
    assert values == {0.0, 1.0}
    assert first.ts.isoformat() == "2019-04-25T14:42:33+00:00"
