"""Crypto-PAn IP pseudonyms keep prefixes and depend on the key; HMAC tokens are stable and keyed."""

from __future__ import annotations

import ipaddress

import pytest

from healthsec.privacy.pseudonymise import IpPseudonymiser, Pseudonymiser, SharingKeys

KEY = SharingKeys.from_secret(b"community-A-secret-0123456789abcdef")
OTHER = SharingKeys.from_secret(b"community-B-secret-0123456789abcdef")


def _common_prefix(a: str, b: str) -> int:
    x, y = int(ipaddress.ip_address(a)), int(ipaddress.ip_address(b))
    bits = ipaddress.ip_address(a).max_prefixlen
    return bits - (x ^ y).bit_length()


def test_bad_input_is_refused_with_the_value() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        SharingKeys.from_secret(b"short")
    with pytest.raises(ValueError, match="32-byte key"):
        IpPseudonymiser(b"x" * 16)
    with pytest.raises(ValueError, match="not an IP address: 'host-17'"):
        IpPseudonymiser(KEY.ip_key).ip("host-17")


def test_prefix_preserved_ipv4_and_ipv6() -> None:
    p = IpPseudonymiser(KEY.ip_key)
    pairs = [
        ("10.1.2.3", "10.1.2.200"),
        ("10.1.2.3", "10.9.0.1"),
        ("192.168.7.1", "8.8.8.8"),
        ("2001:db8:aa::1", "2001:db8:aa::ff"),
        ("2001:db8:aa::1", "fe80::1"),
    ]
    for a, b in pairs:
        assert _common_prefix(p.ip(a), p.ip(b)) == _common_prefix(a, b)
        assert p.ip(a) != a
    assert ipaddress.ip_address(p.ip("2001:db8::1")).version == 6


def test_deterministic_per_key_and_cached() -> None:
    a, b = IpPseudonymiser(KEY.ip_key, cache_size=2), IpPseudonymiser(KEY.ip_key)
    first = a.ip("172.16.5.4")
    for ip in ("1.1.1.1", "2.2.2.2", "3.3.3.3"):  # evicts the first entry from the LRU
        a.ip(ip)
    assert a.ip("172.16.5.4") == first == b.ip("172.16.5.4")
    assert IpPseudonymiser(OTHER.ip_key).ip("172.16.5.4") != first


def test_tokens() -> None:
    p = Pseudonymiser(KEY.id_key)
    t = p.token("user", "alice.jones")
    assert t.startswith("user-")
    assert len(t) == len("user-") + 20
    assert p.token("user", " Alice.Jones ") == t
    assert p.token("host", "alice.jones") != t
    assert Pseudonymiser(OTHER.id_key).token("user", "alice.jones") != t
    assert "alice" not in t
    assert "redacted" in repr(KEY)
