"""``rules export``: Sigma rules to SPL / Lucene with pySigma backends; what cannot convert is listed."""

from __future__ import annotations

import pytest

from healthsec.services.rules_export import ExportError, export

GOOD = """
title: Fsutil journal deletion
id: 11111111-1111-4111-8111-111111111111
status: test
logsource: {category: process_creation, product: windows}
detection:
  sel:
    Image|endswith: '\\\\fsutil.exe'
    CommandLine|contains: deletejournal
  condition: sel
level: high
tags: [attack.defense-evasion, attack.t1070]
"""
PLACEHOLDER = """
title: Placeholder rule
id: 22222222-2222-4222-8222-222222222222
logsource: {category: process_creation, product: windows}
detection:
  sel:
    User|expand: '%admins%'
  condition: sel
level: low
"""
BROKEN = "title: [unclosed\n"


@pytest.mark.parametrize(
    ("target", "needle"),
    [
        ("splunk", 'Image="*\\\\fsutil.exe"'),
        ("elasticsearch", "process.executable"),
        ("opensearch", "process."),
    ],
)
def test_export_converts_and_lists_failures(target: str, needle: str) -> None:
    result = export(target, [("good.yml", GOOD), ("ph.yml", PLACEHOLDER), ("broken.yml", BROKEN)])
    assert [q["rule"] for q in result.queries] == ["11111111-1111-4111-8111-111111111111"]
    q = result.queries[0]
    assert needle in q["query"] and q["level"] == "high" and "attack.t1070" in q["tags"]
    reasons = {f["rule"]: f["reason"] for f in result.failures}
    assert "placeholder" in reasons["22222222-2222-4222-8222-222222222222"].lower()
    assert "broken.yml" in reasons


def test_unknown_target() -> None:
    with pytest.raises(ExportError, match="unknown target 'qradar'"):
        export("qradar", [])
