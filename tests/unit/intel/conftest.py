"""Fixtures for the threat-intelligence tests: a real shipped CSAF advisory to mutate, tiny TRAM data."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

SAMPLE = "2023/icsma-23-047-01.json"  # BD Alaris Infusion Central, one product, one CVE


@pytest.fixture
def csaf_doc(shared_data: Path) -> dict[str, Any]:
    doc = json.loads((shared_data / "cisa-csaf-icsma" / SAMPLE).read_text(encoding="utf-8"))
    return copy.deepcopy(doc)
