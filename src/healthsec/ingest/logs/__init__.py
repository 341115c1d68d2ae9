"""Log ingestion: EVTX, OTRF / Winlogbeat JSON, syslog, auditd and Zeek files as typed LogRecords."""

from healthsec.ingest.logs.sources import FORMATS, LogFileSource, read_evtx, read_json_text, read_zeek_text
from healthsec.ingest.logs.windows import RecordError, parse_time, to_log_record

__all__ = [
    "FORMATS",
    "LogFileSource",
    "RecordError",
    "parse_time",
    "read_evtx",
    "read_json_text",
    "read_zeek_text",
    "to_log_record",
]
