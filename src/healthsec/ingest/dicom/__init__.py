"""DICOM ingestion: file inspection (preamble polyglots, malformed elements) and a monitoring SCP/proxy."""

from healthsec.ingest.dicom.inspect import (
    EXECUTABLE_KINDS,
    DicomFileSource,
    Inspection,
    classify_preamble,
    expand_dicom_paths,
    file_event,
    inspect_bytes,
)
from healthsec.ingest.dicom.monitor import DicomMonitor, MonitorStats, wildcard_keys

__all__ = [
    "EXECUTABLE_KINDS",
    "DicomFileSource",
    "DicomMonitor",
    "Inspection",
    "MonitorStats",
    "classify_preamble",
    "expand_dicom_paths",
    "file_event",
    "inspect_bytes",
    "wildcard_keys",
]
