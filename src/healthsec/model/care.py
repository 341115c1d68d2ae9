"""Who may see whom: care relationships, surnames, VIP flags and roles that access analytics judge against.

A domain type shared by the FHIR directory reader (ingest) and the access detector (detect), so it lives in
``model``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace


def normalise_surname(name: str | None) -> str | None:
    """Compare surnames without case, digits (Synthea appends them) or punctuation."""
    if not name:
        return None
    letters = "".join(ch for ch in name.casefold() if ch.isalpha())
    return letters or None


@dataclass(frozen=True, slots=True, kw_only=True)
class CareContext:
    """The hospital's care relationships as access analytics see them.

    ``care`` maps a canonical user key (``Practitioner/<id>``) to the patients they share an encounter or a
    care team with. ``aliases`` maps other spellings of a user (``<npi system>|<npi>``) to the canonical key.
    """

    care: Mapping[str, frozenset[str]] = field(default_factory=dict)
    patient_surnames: Mapping[str, str] = field(default_factory=dict)
    user_surnames: Mapping[str, str] = field(default_factory=dict)
    user_roles: Mapping[str, str] = field(default_factory=dict)
    vip_patients: frozenset[str] = frozenset()
    aliases: Mapping[str, str] = field(default_factory=dict)
    service_accounts: frozenset[str] = frozenset()

    def canonical_user(self, user: str) -> str:
        return self.aliases.get(user, user)

    def knows_user(self, user: str) -> bool:
        """True when the directory lists this user, so a missing relationship means something."""
        u = self.canonical_user(user)
        return u in self.care or u in self.user_roles or u in self.user_surnames

    def has_relationship(self, user: str, patient_id: str) -> bool:
        return patient_id in self.care.get(self.canonical_user(user), frozenset())

    def same_surname(self, user: str, patient_id: str) -> bool:
        mine = self.user_surnames.get(self.canonical_user(user))
        theirs = self.patient_surnames.get(patient_id)
        return mine is not None and mine == theirs

    def role_of(self, user: str, fallback: str | None = None) -> str | None:
        return self.user_roles.get(self.canonical_user(user), fallback)

    def with_vips(self, patients: Iterable[str]) -> CareContext:
        """A copy with these patients flagged as VIPs (staff, celebrities, patients under protection)."""
        return replace(self, vip_patients=self.vip_patients | frozenset(patients))

    def with_user(
        self,
        user: str,
        *,
        surname: str | None = None,
        role: str | None = None,
        patients: Iterable[str] = (),
    ) -> CareContext:
        """A copy with one user added or updated (HR feed, roster, or a test)."""
        care = dict(self.care)
        care[user] = care.get(user, frozenset()) | frozenset(patients)
        surnames = dict(self.user_surnames)
        norm = normalise_surname(surname)
        if norm:
            surnames[user] = norm
        roles = dict(self.user_roles)
        if role:
            roles[user] = role
        return replace(self, care=care, user_surnames=surnames, user_roles=roles)
