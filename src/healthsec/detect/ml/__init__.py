"""Machine-learning detectors over flows and telemetry (no I/O)."""

from healthsec.detect.ml.netflow_baseline import BeaconDetector, FlowAnomalyDetector

__all__ = ["BeaconDetector", "FlowAnomalyDetector"]
