"""AlertingDetectors built from loaded model artefacts (flows, flows-federated, devices, telemetry).

Each factory takes a ``LoadedModel`` (see ``healthsec.detect.artefacts_load``) and returns an object
with ``name``, ``version``, ``fit`` and ``detect``. The version names the artefact in service
(``1.0+flows-v3``), so every alert says which trained model raised it. ``fit`` does nothing: these
detectors are fitted by ``healthsec train``, and a benign day seen by the pipeline must not silently
replace a promoted model. Pure: no I/O, no store.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from healthsec.detect.base import AlertingDetector
from healthsec.model import (
    Alert,
    DeviceReading,
    Entity,
    EntityKind,
    EntityRole,
    Event,
    Flow,
    Severity,
    stable_id,
)

if TYPE_CHECKING:
    from healthsec.detect.artefacts_load import LoadedModel


class _ArtefactDetector:
    """Shared by the three: the artefact's identity in ``version`` and a no-op ``fit``."""

    name: str
    version: str

    def __init__(self, loaded: LoadedModel, name: str, code_version: str) -> None:
        self.loaded = loaded
        self.model: Any = loaded.model
        self.name = name
        self.version = f"{code_version}+{loaded.artefact.id}"

    def fit(self, events: Iterable[Event]) -> None:
        """Nothing to learn here: the artefact was fitted by ``healthsec train`` (see module doc)."""
        del events

    def _stamp(self, alerts: list[Alert]) -> list[Alert]:
        return [dataclasses.replace(a, detector_version=self.version) for a in alerts]


class FlowModelDetector(_ArtefactDetector):
    """The promoted flow ensemble over Flow events (their ``features`` carry the model's columns)."""

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        return self._stamp(self.model.detect(events))


class TelemetryModelDetector(_ArtefactDetector):
    """The promoted telemetry classifier over DeviceReadings of its device type (values only)."""

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        from healthsec.detect.clinical.telemetry_model import alerts_from_predictions

        wanted = set(self.model.features)
        dtype = self.model.device_type
        readings = [
            e
            for e in events
            if isinstance(e, DeviceReading)
            and (dtype is None or e.device_type == dtype)
            and any(e.metrics.get(f) is not None for f in wanted)
        ]
        if not readings:
            return []
        pred = self.model.predict(readings)
        return self._stamp(alerts_from_predictions(readings, pred, detector=self.name))


class DeviceModelDetector(_ArtefactDetector):
    """Passive device identification over each host's flows; alerts when a host's identity changes.

    A host (source address) with at least ``min_flows`` flows in a batch is identified. Its first
    known identity is remembered (that is inventory, not an alert); a later batch whose traffic is
    another device type, or no known device any more, raises an alert: a swapped or compromised
    device, or something spoofing its address (ATT&CK for ICS T0849 Masquerading).
    """

    def __init__(self, loaded: LoadedModel, name: str, code_version: str, min_flows: int = 20) -> None:
        super().__init__(loaded, name, code_version)
        self.min_flows = min_flows
        self.identity: dict[str, str] = {}

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        from healthsec.detect.ml.devices import UNKNOWN

        by_host: dict[str, list[Flow]] = defaultdict(list)
        for e in events:
            if isinstance(e, Flow) and e.src_ip:
                by_host[e.src_ip].append(e)
        alerts = []
        for host, flows in sorted(by_host.items()):
            if len(flows) < self.min_flows:
                continue
            device, conf, why = self.model.identify(_capture(host, flows))
            known = self.identity.get(host)
            if known is None:
                if device != UNKNOWN:
                    self.identity[host] = device
                continue
            if device == known:
                continue
            now = "no known device" if device == UNKNOWN else f"a {device}"
            alerts.append(
                Alert(
                    id=stable_id("alert", self.name, host, known, device, flows[0].id),
                    ts=max(f.ts for f in flows),
                    detector=self.name,
                    detector_version=self.version,
                    title=f"Device at {host} no longer looks like a {known}",
                    score=round(max(conf, 0.5), 4),
                    severity=Severity.HIGH if device != UNKNOWN else Severity.MEDIUM,
                    explanation=(
                        f"{len(flows)} flow(s) from {host}, first identified as {known}, now look like {now} "
                        f"({why})"
                    ),
                    evidence=tuple(f.id for f in flows[:500]),
                    entities=(Entity(EntityKind.IP, host, EntityRole.ACTOR),),
                    techniques=("T0849",),
                    tactics=("evasion",),
                    features={"was": known, "now": device, "confidence": round(conf, 4)},
                )
            )
        return alerts


def _capture(host: str, flows: Sequence[Flow]) -> Any:
    """A Capture (what the identifier reads) from one host's Flow events."""
    import polars as pl

    from healthsec.detect.ml.devices import FLOW_STATS, Capture

    def value(f: Flow, col: str) -> float | None:
        v = f.features.get(col)
        if v is None and col == "dst_port":
            v = f.dst_port
        try:
            return None if v is None else float(v)
        except (TypeError, ValueError):
            return None

    frame = pl.DataFrame(
        {c: pl.Series(c, [value(f, c) for f in flows], dtype=pl.Float64) for c in FLOW_STATS}
    )
    names = [_text(f.features.get("requested_server_name") or f.features.get("server_name")) for f in flows]
    return Capture(
        name=host,
        frame=frame,
        server_names=names,
        applications=[f.application for f in flows],
        clients=[host] * len(flows),
    )


def _text(v: object) -> str | None:
    return str(v) if v not in (None, "") else None


def flow_model_detector(loaded: LoadedModel) -> AlertingDetector:
    """The promoted flow ensemble as an AlertingDetector (name ``flow-ensemble``)."""
    return FlowModelDetector(loaded, loaded.model.name, loaded.model.version)


def device_model_detector(loaded: LoadedModel) -> AlertingDetector:
    """The promoted device identifier as an AlertingDetector (name ``ml.device-identity``)."""
    return DeviceModelDetector(loaded, "ml.device-identity", "1.0")


def telemetry_model_detector(loaded: LoadedModel) -> AlertingDetector:
    """The promoted telemetry classifier as an AlertingDetector (name ``clinical.telemetry-model``)."""
    from healthsec.detect.clinical.telemetry_model import FORMAT_VERSION

    return TelemetryModelDetector(loaded, "clinical.telemetry-model", str(FORMAT_VERSION))


FACTORIES: dict[str, Callable[[LoadedModel], AlertingDetector]] = {
    "flows": flow_model_detector,
    "flows-federated": flow_model_detector,  # FederatedFlowModel: name flow-federated, same protocol
    "devices": device_model_detector,
    "telemetry": telemetry_model_detector,
}


def detector_for(loaded: LoadedModel) -> AlertingDetector:
    """The AlertingDetector of any loaded artefact, by its kind."""
    return FACTORIES[loaded.kind](loaded)


class ScoredFlowTable:
    """File mode (``healthsec detect flows``): one table's predictions, made once, as the engine's detector.

    The scoring use case predicts every row of a flow table in one vectorised call (it also writes the
    per-row predictions file); this detector turns the flagged rows among the events the engine hands it
    into the ensemble's alerts, so the file is not scored twice and the alerts go through the engine
    (ATT&CK enrichment, correlation) like every other detection.
    """

    def __init__(self, ensemble: Any, frame: Any, prediction: Any, flow_ids: Sequence[str]) -> None:
        self.ensemble = ensemble
        self.frame = frame
        self.prediction = prediction
        self.name: str = ensemble.name
        self.version: str = ensemble.version
        self._row = {fid: i for i, fid in enumerate(flow_ids)}

    def fit(self, events: Iterable[Event]) -> None:
        """Nothing to learn: the ensemble was trained by ``healthsec train flows``."""
        del events

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        flagged = self.prediction.is_attack
        pairs = [
            (e, self._row[e.id])
            for e in events
            if isinstance(e, Flow) and e.id in self._row and flagged[self._row[e.id]]
        ]
        if not pairs:
            return []
        alerts: list[Alert] = self.ensemble.alerts(
            [f for f, _ in pairs], self.frame, self.prediction, [i for _, i in pairs]
        )
        return alerts


class ScoredReadings:
    """File mode (``healthsec detect telemetry``): the classifier's predictions of one file, made once by
    the scoring use case, as the engine's ``clinical.telemetry-model`` detector (see ScoredFlowTable)."""

    name = "clinical.telemetry-model"

    def __init__(self, readings: Sequence[DeviceReading], prediction: Any, version: str) -> None:
        self.readings = list(readings)
        self.prediction = prediction
        self.version = version
        self._row = {r.id: i for i, r in enumerate(self.readings)}

    def fit(self, events: Iterable[Event]) -> None:
        """Nothing to learn: the classifier was trained by ``healthsec train telemetry``."""
        del events

    def detect(self, events: Sequence[Event]) -> list[Alert]:
        from healthsec.detect.clinical.telemetry_model import Predictions, alerts_from_predictions

        rows = [self._row[e.id] for e in events if e.id in self._row]
        if not rows:
            return []
        p = self.prediction
        sub = Predictions(p.score[rows], p.is_attack[rows], [p.predicted[i] for i in rows])
        return alerts_from_predictions([self.readings[i] for i in rows], sub, detector=self.name)
