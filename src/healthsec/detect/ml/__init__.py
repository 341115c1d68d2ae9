"""Machine-learning detectors over flows and telemetry (no I/O)."""

from healthsec.detect.ml.devices import DeviceIdentifier
from healthsec.detect.ml.ensemble import FlowEnsemble, Prediction
from healthsec.detect.ml.features import FeatureSchema, SchemaError
from healthsec.detect.ml.netflow_baseline import BeaconDetector, FlowAnomalyDetector
from healthsec.detect.ml.streaming import StreamingFlowDetector
from healthsec.detect.ml.supervised import SupervisedFlowModel
from healthsec.detect.ml.unsupervised import UnsafeModelError, UnsupervisedFlowModel
from healthsec.model.capture import Capture

__all__ = [
    "BeaconDetector",
    "Capture",
    "DeviceIdentifier",
    "FeatureSchema",
    "FlowAnomalyDetector",
    "FlowEnsemble",
    "Prediction",
    "SchemaError",
    "StreamingFlowDetector",
    "SupervisedFlowModel",
    "UnsafeModelError",
    "UnsupervisedFlowModel",
]
