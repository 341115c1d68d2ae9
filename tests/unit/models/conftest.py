"""Small synthetic models of each kind, trained once per session (see healthsec.testing.artefacts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthsec.testing import artefacts


@pytest.fixture(scope="session")
def telemetry_files() -> dict[str, bytes]:
    return artefacts.telemetry_files()


@pytest.fixture(scope="session")
def flow_files() -> dict[str, bytes]:
    return artefacts.flow_files()


@pytest.fixture(scope="session")
def device_files() -> dict[str, bytes]:
    return artefacts.device_files()


@pytest.fixture
def model_dir(tmp_path: Path, telemetry_files: dict[str, bytes]) -> Path:
    """A directory as ``healthsec train telemetry`` writes it."""
    d = tmp_path / "telemetry-model"
    d.mkdir()
    for name, data in telemetry_files.items():
        (d / name).write_bytes(data)
    return d
