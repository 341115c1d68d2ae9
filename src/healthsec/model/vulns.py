"""Vulnerabilities on assets: CVE ids, CVSS v3.x / v4.0 vectors (via ``cvss``), known-exploited flags.

The :class:`Vulnerability` record is exchanged by the inventory importer, the store and risk analysis, so it
lives in ``model``; the ``cvss`` package (pure computation, no I/O) is imported only inside ``parse_cvss``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from healthsec.model.common import stable_id

_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")

# CVSS v4.0 has no exploitability sub-score, so we weigh its exploitability metrics ourselves:
# the factors mirror the v3.1 exploitability coefficients (AV, AC, PR, UI), with AT like AC.
_V4_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 1.0, "A": 0.73, "L": 0.64, "P": 0.24},
    "AC": {"L": 1.0, "H": 0.57},
    "AT": {"N": 1.0, "P": 0.57},
    "PR": {"N": 1.0, "L": 0.73, "H": 0.32},
    "UI": {"N": 1.0, "P": 0.73, "A": 0.5},
}
_V3_MAX_ESC = 3.887  # 8.22 x 0.85 x 0.77 x 0.85 x 0.85: the largest CVSS v3 exploitability sub-score


class VulnError(ValueError):
    """A CVE id or CVSS vector is invalid; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class Cvss:
    """A parsed CVSS vector: version, the normalised vector, base score, and exploitability in 0..1."""

    version: str
    vector: str
    base_score: float
    severity: str
    exploitability: float


def parse_cvss(vector: str) -> Cvss:
    """Parse a CVSS v3.0/v3.1/v4.0 vector with the ``cvss`` package; raise VulnError if invalid."""
    from cvss import CVSS3, CVSS4  # the scoring library loads only when a vector is parsed
    from cvss.exceptions import CVSSError

    text = vector.strip()
    try:
        if text.startswith("CVSS:4.0/"):
            c4 = CVSS4(text)
            expl = 1.0
            for metric, weights in _V4_WEIGHTS.items():
                expl *= weights.get(str(c4.metrics.get(metric)), 1.0)
            return Cvss("4.0", c4.clean_vector(), float(c4.base_score), str(c4.severity), round(expl, 4))
        if text.startswith(("CVSS:3.1/", "CVSS:3.0/")):
            c3 = CVSS3(text)
            esc = float(c3.esc) / _V3_MAX_ESC
            return Cvss(
                text[5:8], c3.clean_vector(), float(c3.base_score), str(c3.severities()[0]), round(esc, 4)
            )
    except CVSSError as exc:
        raise VulnError(f"invalid CVSS vector {text!r}: {exc}") from None
    raise VulnError(f"invalid CVSS vector {text!r}: must start with CVSS:3.0/, CVSS:3.1/ or CVSS:4.0/")


def normalise_cve(text: str) -> str:
    cve = text.strip().upper()
    if not _CVE.match(cve):
        raise VulnError(f"invalid CVE id {text!r} (expected CVE-YYYY-NNNN)")
    return cve


@dataclass(frozen=True, slots=True, kw_only=True)
class Vulnerability:
    """One CVE found on one asset (by a scanner or an inventory); None means not known."""

    id: str
    asset_id: str
    cve: str
    cvss_vector: str | None = None
    cvss_version: str | None = None
    base_score: float | None = None
    exploitability: float | None = None
    known_exploited: bool | None = None
    title: str | None = None
    source: str | None = None
    epss: float | None = None  # FIRST EPSS probability of exploitation activity in 30 days

    @classmethod
    def create(
        cls,
        asset_id: str,
        cve: str,
        cvss_vector: str | None = None,
        *,
        known_exploited: bool | None = None,
        title: str | None = None,
        source: str | None = None,
        base_score: float | None = None,
        epss: float | None = None,
    ) -> Vulnerability:
        """Validate and build; the id is stable for (asset, CVE) so re-imports replace, not duplicate."""
        cve_id = normalise_cve(cve)
        parsed = parse_cvss(cvss_vector) if cvss_vector and cvss_vector.strip() else None
        if base_score is not None and not 0.0 <= base_score <= 10.0:
            raise VulnError(f"CVSS base score {base_score} is outside 0..10")
        return cls(
            id=stable_id("vuln", asset_id, cve_id),
            asset_id=asset_id,
            cve=cve_id,
            cvss_vector=parsed.vector if parsed else None,
            cvss_version=parsed.version if parsed else None,
            base_score=parsed.base_score if parsed else base_score,
            exploitability=parsed.exploitability if parsed else None,
            known_exploited=known_exploited,
            title=title,
            source=source,
            epss=epss,
        )
