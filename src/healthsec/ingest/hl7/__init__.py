"""HL7 v2 ingestion: files, pcaps and an MLLP listener (tap or inline proxy), into ClinicalMessage events."""

from healthsec.ingest.hl7.ack import ack_code_of, build_ack
from healthsec.ingest.hl7.files import HL7FileSource, expand_paths
from healthsec.ingest.hl7.listener import HL7Listener, ListenerStats
from healthsec.ingest.hl7.mllp import MllpDecoder, deframe_all, frame
from healthsec.ingest.hl7.parse import message_event, normalise, split_messages
from healthsec.ingest.hl7.pcap import HL7PcapSource

__all__ = [
    "HL7FileSource",
    "HL7Listener",
    "HL7PcapSource",
    "ListenerStats",
    "MllpDecoder",
    "ack_code_of",
    "build_ack",
    "deframe_all",
    "expand_paths",
    "frame",
    "message_event",
    "normalise",
    "split_messages",
]
