"""ATT&CK knowledge records (tactics, techniques, mitigations, healthcare actors) from pinned data.

Plain records shared by the knowledge-base builder (ingest), ATT&CK analysis and reports; the lookups live
in :class:`healthsec.analyze.attack.AttackKB`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tactic:
    id: str
    shortname: str
    name: str
    domain: str
    rank: int


@dataclass(frozen=True, slots=True)
class Technique:
    id: str
    name: str
    domain: str
    tactics: tuple[str, ...]
    parent: str | None
    platforms: tuple[str, ...]
    description: str
    mitigations: tuple[str, ...]
    data_components: tuple[str, ...]
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Mitigation:
    id: str
    name: str
    description: str


@dataclass(frozen=True, slots=True)
class HealthcareActor:
    name: str
    synonyms: tuple[str, ...]
    country: str | None
    evidence: str
    attack_group: str | None
