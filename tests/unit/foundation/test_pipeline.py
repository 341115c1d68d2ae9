"""The pipeline keeps going past bad records and broken detectors, and loses nothing already accepted."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from healthsec.config import ConfigError, load_settings
from healthsec.detect.registry import DetectorContext, spec_for
from healthsec.engine import Engine
from healthsec.ingest import IterableSource
from healthsec.model import Alert, Event, Flow, ParseError, Severity
from healthsec.pipeline import Pipeline
from healthsec.store import Store
from healthsec.store.detection import detection

T = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


class EveryFlowFrom:
    name, version = "test-every-flow", "1"

    def __init__(self, ip: str) -> None:
        self.ip = ip

    def fit(self, events: Iterable[Event]) -> None:
        pass

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        return [
            Alert(
                id=f"a-{e.id}",
                ts=e.ts,
                detector=self.name,
                detector_version="1",
                title="hit",
                score=1.0,
                severity=Severity.LOW,
                explanation=f"flow from {self.ip}",
                evidence=(e.id,),
            )
            for e in events
            if isinstance(e, Flow) and e.src_ip == self.ip
        ]


class Broken:
    name, version = "broken", "1"

    def fit(self, events: Iterable[Event]) -> None:
        pass

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        raise RuntimeError("model file corrupt")


def test_parse_errors_and_failing_detectors_do_not_stop_the_run(tmp_path: Path) -> None:
    items: list[Event | ParseError] = []
    for i in range(300):
        if i % 50 == 7:
            items.append(ParseError(source="csv", locator="flows.csv", record=i, reason="bytes_out is 'abc'"))
        else:
            items.append(
                Flow(
                    id=f"f{i}",
                    ts=T + timedelta(minutes=i),
                    source="t",
                    src_ip="10.0.0.66" if i % 10 == 0 else "10.0.0.1",
                    dst_ip="10.0.0.2",
                )
            )
    store = Store.open(str(tmp_path / "p.db"))
    specs = [spec_for(Broken()), spec_for(EveryFlowFrom("10.0.0.66"))]
    engine = Engine(specs, DetectorContext())
    result = Pipeline(engine, store, resume=False).run(IterableSource("t", items))
    assert result.report.events == 294
    assert [e.describe() for e in result.report.errors][:1] == ["flows.csv record 7: bytes_out is 'abc'"]
    # the broken detector is a dead letter per event (detector, event id, reason); the other one goes on
    assert len(result.detector_failures) == 294 and "model file corrupt" in result.detector_failures[0]
    assert result.detector_failures[0].startswith("broken: event f0: RuntimeError")
    assert detection(store).count_dead_letters() == 294
    assert store.events.count() == 294
    assert store.alerts.count() == 30 == len(result.alerts)
    assert sum(len(i.alert_ids) for i in result.incidents) == 30


def test_settings_refuse_unknown_keys_with_their_names(tmp_path: Path) -> None:
    cfg = tmp_path / "hs.toml"
    cfg.write_text('db = "sqlite:///x.db"\ndatabse_url = "oops"\n')
    try:
        load_settings(cfg)
    except ConfigError as exc:
        assert "databse_url" in str(exc)
    else:
        raise AssertionError("unknown key accepted")


def test_raw_clinical_text_is_dropped_before_storage() -> None:
    from healthsec.ingest import without_raw_text
    from healthsec.model import ClinicalMessage

    msg = ClinicalMessage(
        id="m1",
        ts=T,
        source="hl7",
        protocol="hl7",
        message_type="ADT^A01",
        fields={"text": "PID|1||MRN123||Doe^Jane", "segments": 3},
    )
    stripped = without_raw_text(msg)
    assert stripped.fields == {"segments": 3}  # type: ignore[union-attr]
    flow = Flow(id="f", ts=T, source="t", src_ip="10.0.0.1", dst_ip="10.0.0.2")
    assert without_raw_text(flow) is flow


class LooksAhead(EveryFlowFrom):
    """Records what the pipeline hands ahead, and which buckets it is then asked to detect."""

    def __init__(self, ip: str) -> None:
        super().__init__(ip)
        self.ahead: list[int] = []
        self.steps: list[int] = []

    def prepare(self, events: Sequence[Event]) -> None:
        self.ahead.append(len(events))

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        self.steps.append(len(events))
        return super().detect(events)


def test_buckets_are_read_ahead_in_chunks_and_detected_hour_by_hour(tmp_path: Path) -> None:
    # 10 hours of flows, one every 10 minutes: chunks of several hours go to prepare(), detection stays
    # hour by hour, and the alerts are those of a detector that never sees the look-ahead
    flows = [
        Flow(
            id=f"f{i}",
            ts=T + timedelta(minutes=10 * i),
            source="t",
            src_ip=f"10.0.0.{i % 3}",
            dst_ip="10.9.9.9",
        )
        for i in range(60)
    ]
    ahead, plain = LooksAhead("10.0.0.1"), EveryFlowFrom("10.0.0.1")
    runs = []
    for det, name in ((ahead, "a.db"), (plain, "b.db")):
        pipe = Pipeline(
            Engine([spec_for(det)], DetectorContext()), Store.open(str(tmp_path / name)), resume=False
        )
        runs.append(pipe.run(IterableSource("t", flows)))
    assert ahead.steps == [6] * 10  # one detect per hour
    assert sum(ahead.ahead) == 60 and max(ahead.ahead) > 6  # read ahead several hours at once
    assert ahead.ahead[-1] == 0  # and the look-ahead is dropped when the run ends
    assert sorted(runs[0].alerts) == sorted(runs[1].alerts) and len(runs[0].alerts) == 20
