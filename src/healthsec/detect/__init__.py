"""Detectors: ML models (ml/), rules (rules/) and clinical protocol analytics (clinical/). No I/O."""

from healthsec.detect.base import AlertingDetector, BatchDetector, OnlineDetector

__all__ = ["AlertingDetector", "BatchDetector", "OnlineDetector"]
