"""How likely a vulnerability is exploited; the Vulnerability record itself lives in healthsec.model.vulns."""

from __future__ import annotations

from healthsec.model.vulns import Cvss, Vulnerability, VulnError, normalise_cve, parse_cvss

__all__ = [
    "KEV_LIKELIHOOD",
    "UNSCORED_LIKELIHOOD",
    "Cvss",
    "VulnError",
    "Vulnerability",
    "exploit_likelihood",
    "normalise_cve",
    "parse_cvss",
]

# How likely a vulnerability is exploited, given what we know (documented heuristic, not a model):
# a known-exploited CVE (e.g. CISA KEV) is close to certain to be tried; otherwise the CVSS
# exploitability drives it, with the base score as a weaker proxy when only a score is known; an EPSS
# score (FIRST's modelled probability of exploitation activity) raises it when higher.
KEV_LIKELIHOOD = 0.9
UNSCORED_LIKELIHOOD = 0.3


def exploit_likelihood(v: Vulnerability) -> tuple[float, str]:
    """Probability-like weight (0..1) that ``v`` is exploited, and the reason in words."""
    if v.known_exploited:
        return KEV_LIKELIHOOD, f"{v.cve} is known exploited"
    p, why = _cvss_likelihood(v)
    if v.epss is not None and v.epss > p:
        return round(min(v.epss, KEV_LIKELIHOOD), 3), f"{v.cve} EPSS {v.epss:.3f} (above {why})"
    return p, why


def _cvss_likelihood(v: Vulnerability) -> tuple[float, str]:
    if v.exploitability is not None:
        p = 0.1 + 0.6 * v.exploitability
        return round(p, 3), f"{v.cve} CVSS {v.cvss_version} exploitability {v.exploitability:.2f}"
    if v.base_score is not None:
        return round(0.05 + 0.05 * v.base_score, 3), f"{v.cve} CVSS base score {v.base_score} (no vector)"
    return UNSCORED_LIKELIHOOD, f"{v.cve} without CVSS (assumed {UNSCORED_LIKELIHOOD})"
