"""Keyed pseudonyms: prefix-preserving Crypto-PAn for IP addresses, HMAC tokens for users, hosts, patients.

:func:`patient_pseudonym` is the one way a patient identifier becomes an entity id anywhere in healthsec
(HL7, FHIR, DICOM, telemetry, the simulator): see its docstring for the normalisation.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

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


PATIENT_PREFIX = "patient-"
MIN_PATIENT_KEY_BYTES = 16


class PatientRef(NamedTuple):
    """A patient identifier reduced to (assigning authority, value); ``""`` is the local authority."""

    authority: str
    value: str


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def patient_ref(
    patient_id: str, *, authority: str | None = None, local_authority: str | None = None
) -> PatientRef:
    """Reduce one patient identifier, as any source writes it, to ``(authority, value)``.

    Accepted forms (what is kept, in order of precedence):

    - HL7 v2 CX ``12345^^^HOSP&1.2.3&ISO^MR`` (PID-3): the ID (component 1) and the assigning authority
      (component 4: its namespace id, else its universal id). Repetitions (``~``) keep the first one.
    - FHIR reference ``Patient/12345``, absolute ``https://ehr/fhir/Patient/12345`` or versioned
      ``Patient/12345/_history/2``: the logical id, no authority.
    - FHIR token ``system|value`` (an Identifier): the value, with the system as its authority.
    - DICOM PatientID ``12345`` or any bare id: the value; pass IssuerOfPatientID as ``authority``.

    Values and authorities are trimmed, inner whitespace collapsed and case-folded (``mrn12345`` and
    ``MRN12345`` are one patient); leading zeros are kept, because some authorities issue ``00123`` and
    ``123`` to different people. The assigning authority matters: the same MRN from two authorities is two
    patients. An identifier that names no authority is taken to be issued by the hospital's own authority,
    so ``local_authority`` (``Settings.patient_id_authority``) folds ``12345^^^HOSP^MR`` onto the same
    patient as FHIR ``Patient/12345`` and DICOM ``12345`` when HOSP is the local authority. An explicit
    ``authority`` argument wins over one written inside ``patient_id``. Raises ValueError on an empty id.
    """
    text = patient_id.strip()
    found = ""
    if "^" in text or "~" in text:  # HL7 CX
        comps = text.split("~", 1)[0].split("^")
        text = comps[0]
        if len(comps) > 3:
            subs = comps[3].split("&")
            found = subs[0] or (subs[1] if len(subs) > 1 else "")
    elif "|" in text:  # FHIR token system|value
        found, _, text = text.rpartition("|")
    elif "/" in text:  # FHIR reference
        parts = [p for p in text.split("/") if p]
        if "_history" in parts:
            parts = parts[: parts.index("_history")]
        if "Patient" in parts:
            at = parts.index("Patient") + 1
            text = parts[at] if at < len(parts) else ""
    value = _norm(text)
    if not value:
        raise ValueError(f"empty patient identifier: {patient_id!r}")
    auth = _norm(authority if authority else found)
    if local_authority and auth == _norm(local_authority):
        auth = ""
    return PatientRef(auth, value)


def patient_pseudonym(
    key: bytes, patient_id: str, *, authority: str | None = None, local_authority: str | None = None
) -> str:
    """The one entity id of a patient: ``patient-<20 hex>``, HMAC-SHA256 of the normalised identifier.

    ``key`` is the site's patient secret (``Settings.patient_key_file``, read by
    :func:`healthsec.config.load_patient_key`); a sub-key is derived from it so the file's bytes are never
    used directly. The same patient written as an HL7 CX, a FHIR reference or a DICOM PatientID gets the
    same id (see :func:`patient_ref`); without the key the id cannot be reversed or recomputed.
    """
    if len(key) < MIN_PATIENT_KEY_BYTES:
        raise ValueError(f"patient key must hold at least {MIN_PATIENT_KEY_BYTES} bytes")
    ref = patient_ref(patient_id, authority=authority, local_authority=local_authority)
    digest = hmac.new(_derive(key, "patient"), f"{ref.authority}\x1f{ref.value}".encode(), hashlib.sha256)
    return PATIENT_PREFIX + digest.hexdigest()[:20]
