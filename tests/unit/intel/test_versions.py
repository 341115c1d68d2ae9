"""Free-text version ranges of advisories: comparisons, intervals, lists, wildcards, prose."""

from __future__ import annotations

import pytest

from healthsec.analyze.versions import parse_version_spec, version_key


@pytest.mark.parametrize(
    ("spec", "version", "expected"),
    [
        ("< 8.2.2", "8.2.1", True),
        ("< 8.2.2", "8.2.10", False),  # numeric, not string comparison
        ("< 8.2.2", "8.2.2", False),
        ("<= 9.33", "9.33", True),
        ("<=1.9.4.1", "1.9.4", True),
        (">= 1.1 | <= 1.3.2", "1.2", True),
        (">= 1.1 | <= 1.3.2", "1.4", False),
        (">= 1.1 | <= 1.3.2", "1.0", False),
        (">= 2.5 | <= 3.11 | >= 2018-1 | <= 2021-1", "2019-4", True),  # two intervals
        ("9.13 | 9.19 | 9.33 | 12.1", "12.1.0", True),  # 12.1 == 12.1.0
        ("9.13 | 9.19 | 9.33 | 12.1", "9.20", False),
        ("4.X | 5.X", "5.2", True),
        ("4.X | 5.X", "6.0", False),
        ("<= 12.2.x.x", "12.2.7.1", True),
        ("<= 12.2.x.x", "12.3", False),
        ("<= R8.0.3", "R8.0.1", True),
        ("<= C.00.04", "C.00.03", True),
        ("< B.06.18", "B.06.18", False),
        ("1.4.2.0-9d9eff4", "1.4.2.0", True),  # a commit suffix is build metadata
        ("v8.x model 35700BAX2", "8.01", True),
        ("vers:generic/>=1.0|<2.0", "1.5", True),
        ("vers:all/*", "anything", True),
        ("all versions", "3", True),
    ],
)
def test_contains(spec: str, version: str, expected: bool) -> None:
    hit, why = parse_version_spec(spec).contains(version)
    assert hit is expected, why


def test_prose_and_unknown_versions_are_undecided_and_say_so() -> None:
    hit, why = parse_version_spec("CoaguChek XS Plus").contains("1.0")
    assert hit is None
    assert "no version information" in why
    hit, why = parse_version_spec("< 8.2.2").contains(None)
    assert hit is None
    assert "asset version unknown" in why


def test_version_key_orders_numbers_numerically_and_drops_v_prefix() -> None:
    assert version_key("v8.2.10") > version_key("8.2.9")
    assert version_key("8.2") == version_key("8.2.0")
    assert version_key("2.6A") > version_key("2.6")
