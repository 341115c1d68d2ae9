"""Flow ingestion: NSL-KDD, UNSW-NB15, CICFlowMeter, Zeek conn.log, labelled CSV and pcap (via nfstream)."""

from healthsec.ingest.flows.formats import FORMATS
from healthsec.ingest.flows.read import read_table
from healthsec.ingest.flows.source import FlowFileSource, flows_from_table
from healthsec.ingest.flows.table import FlowFormatError, FlowTable, training_frame

__all__ = [
    "FORMATS",
    "FlowFileSource",
    "FlowFormatError",
    "FlowTable",
    "flows_from_table",
    "read_table",
    "training_frame",
]
