"""Fixtures for FHIR access analytics: the Synthea care directory and generated AuditEvents."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthsec.ingest.fhir import Directory, load_directory


@pytest.fixture(scope="session")
def synthea(shared_data: Path) -> Directory:
    return load_directory([shared_data / "fhir-bulk-synthea-10-patients"])
