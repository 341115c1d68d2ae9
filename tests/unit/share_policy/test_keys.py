"""Sharing keys come from a flag's file or the environment, never a default; policies round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthsec.share.keys import ENV_VAR, KeyMissing, load_keys
from healthsec.share.policy import TLP, PartnerPolicy, policy_from_dict, policy_to_dict

HEX = "ab" * 32


def test_no_key_anywhere_is_refused() -> None:
    with pytest.raises(KeyMissing, match="no default key"):
        load_keys(None, environ={})


def test_short_and_unreadable_keys_are_refused(tmp_path: Path) -> None:
    short = tmp_path / "short.key"
    short.write_text("abc123\n")
    with pytest.raises(KeyMissing, match=r"short\.key: the sharing key must hold at least 32 bytes"):
        load_keys(short, environ={})
    with pytest.raises(KeyMissing, match="cannot read key file"):
        load_keys(tmp_path / "missing.key", environ={})


def test_file_beats_env_and_hex_is_decoded(tmp_path: Path) -> None:
    f = tmp_path / "community.key"
    f.write_text(HEX + "\n")
    from_file = load_keys(f, environ={ENV_VAR: "c" * 40})
    from_env_hex = load_keys(None, environ={ENV_VAR: HEX})
    from_env_raw = load_keys(None, environ={ENV_VAR: "c" * 40})
    assert from_file.ip_key == from_env_hex.ip_key
    assert from_file.id_key == from_env_hex.id_key
    assert from_env_raw.ip_key != from_file.ip_key
    assert HEX not in repr(from_file)


def test_policy_dict_round_trip() -> None:
    p = PartnerPolicy(
        "b",
        "identity--22222222-2222-4222-8222-222222222222",
        max_tlp=TLP.AMBER_STRICT,
        allowed_types=frozenset({"indicator"}),
        min_confidence=60,
        anonymous=True,
    )
    d = policy_to_dict(p)
    assert d == {
        "max_tlp": "amber+strict",
        "allowed_types": ["indicator"],
        "min_confidence": 60,
        "anonymous": True,
    }
    assert policy_from_dict("b", p.organisation, d) == p
    assert policy_from_dict("c", p.organisation, None).max_tlp is TLP.GREEN
    with pytest.raises(ValueError, match="unknown policy keys"):
        policy_from_dict("b", p.organisation, {"max_tlp": "green", "share_everything": True})
