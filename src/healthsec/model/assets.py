"""Assets of a hospital: role, zone, owner and clinical criticality."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from healthsec.model.common import SCHEMA_VERSION


class Criticality(IntEnum):
    """Clinical criticality: life-sustaining devices rank highest."""

    ADMINISTRATIVE = 1
    BUSINESS = 2
    CLINICAL_SUPPORT = 3
    PATIENT_MONITORING = 4
    LIFE_SUSTAINING = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class Asset:
    """One asset of the inventory."""

    id: str
    name: str
    role: str
    zone: str
    ip: str | None = None
    mac: str | None = None
    owner: str | None = None
    criticality: Criticality = Criticality.BUSINESS
    device_type: str | None = None
    vendor: str | None = None
    # what the device or software is, for matching advisories (CSAF) to the inventory
    product: str | None = None
    version: str | None = None
    cpe: str | None = None
    purl: str | None = None
    schema_version: int = SCHEMA_VERSION


@dataclass(frozen=True, slots=True, kw_only=True)
class AssetProfile:
    """Facts about an asset that risk and paths need; None means unknown (never guessed as 0)."""

    asset_id: str
    phi_records: int | None = None
    internet_facing: bool | None = None
    phishing_exposed: bool | None = None
    vendor_remote: bool | None = None
    criticality_reason: str | None = None
