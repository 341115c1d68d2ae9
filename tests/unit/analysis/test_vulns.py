"""CVSS v3.1 / v4.0 parsing via the cvss package, CVE ids, exploit likelihood."""

from __future__ import annotations

import pytest

from healthsec.analyze.vulns import exploit_likelihood
from healthsec.model.vulns import Vulnerability, VulnError, parse_cvss


def test_cvss31_and_cvss40_are_scored_by_the_cvss_package() -> None:
    v3 = parse_cvss("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
    assert (v3.version, v3.base_score, v3.severity) == ("3.1", 9.8, "Critical")
    assert v3.exploitability == pytest.approx(1.0, abs=1e-3)
    local = parse_cvss("CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:H/I:H/A:H")
    assert local.exploitability < 0.2
    v4 = parse_cvss("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")
    assert (v4.version, v4.base_score) == ("4.0", 9.3)
    assert v4.exploitability == 1.0
    phys = parse_cvss("CVSS:4.0/AV:P/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")
    assert phys.exploitability == pytest.approx(0.24)


@pytest.mark.parametrize(
    ("vector", "reason"),
    [
        ("CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "Unknown value"),
        ("CVSS:3.1/AV:N", "Missing mandatory"),
        ("AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "must start with"),
        ("CVSS:2.0/AV:N", "must start with"),
    ],
)
def test_invalid_vectors_say_why(vector: str, reason: str) -> None:
    with pytest.raises(VulnError, match=reason):
        parse_cvss(vector)


def test_cve_ids_are_checked_and_ids_are_stable() -> None:
    with pytest.raises(VulnError, match="invalid CVE id"):
        Vulnerability.create("a", "CVE-24-1")
    a = Vulnerability.create("a", "cve-2024-12345", None)
    b = Vulnerability.create("a", "CVE-2024-12345", None)
    assert a.cve == "CVE-2024-12345"
    assert a.id == b.id
    assert a.base_score is None
    assert a.known_exploited is None


def test_exploit_likelihood_prefers_known_exploited_then_exploitability() -> None:
    kev = Vulnerability.create(
        "a", "CVE-2024-0001", "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", known_exploited=True
    )
    net = Vulnerability.create("a", "CVE-2024-0002", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
    local = Vulnerability.create("a", "CVE-2024-0003", "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:H/I:H/A:H")
    bare = Vulnerability.create("a", "CVE-2024-0004")
    p = {v.cve: exploit_likelihood(v)[0] for v in (kev, net, local, bare)}
    assert p["CVE-2024-0001"] == 0.9
    assert p["CVE-2024-0002"] == pytest.approx(0.7, abs=1e-3)
    assert p["CVE-2024-0003"] < p["CVE-2024-0004"] < p["CVE-2024-0002"]
    assert "known exploited" in exploit_likelihood(kev)[1]
