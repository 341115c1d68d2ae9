"""Keyed pseudonyms: prefix-preserving Crypto-PAn for IP addresses, HMAC tokens for users, hosts, MRNs."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections import OrderedDict
from dataclasses import dataclass

from yacryptopan import CryptoPAn

MIN_SECRET_BYTES = 32


def _derive(secret: bytes, label: str) -> bytes:
    return hmac.new(secret, f"healthsec/{label}".encode(), hashlib.sha256).digest()


@dataclass(frozen=True, slots=True, repr=False)
class SharingKeys:
    """Per-community key material; one secret is split by HMAC labels so each scheme has its own key."""

    ip_key: bytes
    id_key: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> SharingKeys:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(
                f"sharing key must hold at least {MIN_SECRET_BYTES} bytes of secret, got {len(secret)}"
            )
        return cls(ip_key=_derive(secret, "crypto-pan"), id_key=_derive(secret, "pseudonym"))

    def __repr__(self) -> str:  # never print key material
        return "SharingKeys(<redacted>)"


class IpPseudonymiser:
    """Prefix-preserving IP pseudonyms (Crypto-PAn, Xu et al. 2002) via yacryptopan, with an LRU cache.

    IPv4 and IPv6 both go through Crypto-PAn (yacryptopan implements the 128-bit variant), so two IPv6
    addresses sharing an n-bit prefix keep a shared n-bit prefix too. Non-addresses raise ValueError.
    """

    def __init__(self, key: bytes, cache_size: int = 65_536) -> None:
        if len(key) != 32:
            raise ValueError("Crypto-PAn needs a 32-byte key (16 for AES, 16 for the pad)")
        self._key = key
        self._cache_size = cache_size
        self._cpan: CryptoPAn | None = None
        self._cache: OrderedDict[str, str] = OrderedDict()

    def ip(self, address: str) -> str:
        """Pseudonym of one IPv4 or IPv6 address; the same key always gives the same answer."""
        hit = self._cache.get(address)
        if hit is not None:
            self._cache.move_to_end(address)
            return hit
        try:
            parsed = ipaddress.ip_address(address.strip())
        except ValueError:
            raise ValueError(f"not an IP address: {address!r}") from None
        if self._cpan is None:  # built lazily: the constructor only stores parameters
            self._cpan = CryptoPAn(self._key)
        out = str(self._cpan.anonymize(str(parsed)))
        self._cache[address] = out
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out


class Pseudonymiser:
    """Keyed HMAC-SHA256 pseudonyms for identifiers (users, hosts, MRNs, patient ids), stable per key."""

    def __init__(self, key: bytes, length: int = 20) -> None:
        if len(key) < 16:
            raise ValueError("pseudonym key must be at least 16 bytes")
        self._key = key
        self._length = length

    def token(self, kind: str, value: str) -> str:
        """``kind-<hex>``; values are compared case-insensitively after trimming (``HOST1`` = ``host1``)."""
        norm = value.strip().casefold()
        digest = hmac.new(self._key, f"{kind}\x1f{norm}".encode(), hashlib.sha256).hexdigest()
        return f"{kind}-{digest[: self._length]}"
