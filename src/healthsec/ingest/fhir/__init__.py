"""FHIR R4 ingestion: AuditEvent NDJSON files and REST endpoint, and care relationships from bundles."""

from healthsec.ingest.fhir.auditevent import AuditEventFileSource, parse_resource, to_access
from healthsec.ingest.fhir.bundles import Directory, load_directory
from healthsec.ingest.fhir.rest import create_router

__all__ = [
    "AuditEventFileSource",
    "Directory",
    "create_router",
    "load_directory",
    "parse_resource",
    "to_access",
]
