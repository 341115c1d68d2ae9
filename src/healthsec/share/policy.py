"""TLP 2.0 markings and per-partner sharing rules applied to STIX 2.1 objects held as plain dicts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

StixObject = dict[str, Any]
Transform = Callable[[list[StixObject]], list[StixObject]]


class TLP(StrEnum):
    """Traffic Light Protocol 2.0 levels (FIRST), least to most restrictive."""

    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    AMBER_STRICT = "amber+strict"
    RED = "red"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def label(self) -> str:
        """The tag form, e.g. ``TLP:AMBER+STRICT``."""
        return f"TLP:{self.value.upper()}"

    @classmethod
    def parse(cls, text: str) -> TLP:
        """Accept ``amber+strict``, ``AMBER_STRICT``, ``TLP:AMBER+STRICT``; TLP 1.0 WHITE means CLEAR."""
        key = text.strip().lower().removeprefix("tlp:").replace("_", "+").replace(" ", "")
        if key == "white":
            return cls.CLEAR
        try:
            return cls(key)
        except ValueError:
            choices = ", ".join(t.value for t in cls)
            raise ValueError(f"unknown TLP level {text!r} (expected one of {choices})") from None


_RANK = {TLP.CLEAR: 0, TLP.GREEN: 1, TLP.AMBER: 2, TLP.AMBER_STRICT: 3, TLP.RED: 4}

#: The TLP 2.0 STIX extension (OASIS cti-stix-common-objects, extension-definition-specifications/tlp-2.0).
TLP2_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"

#: Official TLP 2.0 marking-definition ids from the same OASIS specification.
TLP_MARKING_IDS: Mapping[TLP, str] = {
    TLP.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    TLP.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    TLP.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    TLP.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    TLP.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

#: TLP 1.0 marking ids built into STIX 2.1 (partners still send them); WHITE maps to CLEAR.
TLP1_MARKING_IDS: Mapping[str, TLP] = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": TLP.CLEAR,
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": TLP.GREEN,
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": TLP.AMBER,
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": TLP.RED,
}

_TLP_BY_MARKING: dict[str, TLP] = {v: k for k, v in TLP_MARKING_IDS.items()} | dict(TLP1_MARKING_IDS)

#: Attribution used when a partner receives our objects anonymously.
COMMUNITY_IDENTITY: StixObject = {
    "type": "identity",
    "spec_version": "2.1",
    "id": "identity--5e9b1c0a-7f3d-5c1e-9a53-6c0f2b8e4d17",
    "created": "2026-01-01T00:00:00.000Z",
    "modified": "2026-01-01T00:00:00.000Z",
    "name": "Health sector sharing community (anonymous member)",
    "identity_class": "group",
    "sectors": ["healthcare"],
}

#: Object property naming the only organisations an AMBER+STRICT object may go to (optional).
RECIPIENTS_PROPERTY = "x_healthsec_recipients"


def tlp_marking_definition(tlp: TLP) -> StixObject:
    """The official TLP 2.0 marking-definition object for ``tlp``, as a plain dict."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP_MARKING_IDS[tlp],
        "created": "2022-10-01T00:00:00.000Z",
        "name": tlp.label,
        "extensions": {TLP2_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": tlp.value}},
    }


def tlp_of_marking(marking_id: str) -> TLP | None:
    """TLP level of a marking-definition id (2.0 or 1.0), None for any other marking."""
    return _TLP_BY_MARKING.get(marking_id)


def tlp_of(obj: Mapping[str, Any]) -> TLP | None:
    """Most restrictive TLP among an object's ``object_marking_refs``; None when it carries none."""
    found = [t for ref in obj.get("object_marking_refs") or () if (t := tlp_of_marking(str(ref)))]
    return max(found, key=lambda t: t.rank) if found else None


@dataclass(frozen=True, slots=True)
class PartnerPolicy:
    """What one partner may receive: TLP ceiling, object types, minimum confidence, attribution."""

    name: str
    organisation: str
    max_tlp: TLP = TLP.GREEN
    allowed_types: frozenset[str] | None = None
    min_confidence: int = 0
    anonymous: bool = False

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("partner policy needs a name")
        if not self.organisation.startswith("identity--"):
            raise ValueError(
                f"partner {self.name!r}: organisation must be a STIX identity id, got {self.organisation!r}"
            )
        if not isinstance(self.max_tlp, TLP):  # accept "amber+strict" from config files
            object.__setattr__(self, "max_tlp", TLP.parse(str(self.max_tlp)))
        if self.max_tlp is TLP.RED:
            raise ValueError(f"partner {self.name!r}: TLP:RED never leaves, max_tlp must be below RED")
        if not 0 <= self.min_confidence <= 100:
            raise ValueError(f"partner {self.name!r}: min_confidence must be within 0..100")
        if self.allowed_types is not None:
            object.__setattr__(self, "allowed_types", frozenset(self.allowed_types))


def policy_to_dict(policy: PartnerPolicy) -> dict[str, Any]:
    """JSON-ready form of a partner policy (stored with the partner registry)."""
    return {
        "max_tlp": policy.max_tlp.value,
        "allowed_types": sorted(policy.allowed_types) if policy.allowed_types is not None else None,
        "min_confidence": policy.min_confidence,
        "anonymous": policy.anonymous,
    }


def policy_from_dict(name: str, organisation: str, data: Mapping[str, Any] | None) -> PartnerPolicy:
    """A partner policy from :func:`policy_to_dict` output; unknown keys and wrong types are errors."""
    data = dict(data or {})
    unknown = set(data) - {"max_tlp", "allowed_types", "min_confidence", "anonymous"}
    if unknown:
        raise ValueError(f"partner {name!r}: unknown policy keys {sorted(unknown)}")
    types = data.get("allowed_types")
    tlp, confidence, anonymous = (
        data.get("max_tlp", TLP.GREEN.value),
        data.get("min_confidence", 0),
        data.get("anonymous", False),
    )
    if types is not None and (
        not isinstance(types, list | tuple | set | frozenset) or not all(isinstance(t, str) for t in types)
    ):
        raise ValueError(f"partner {name!r}: allowed_types must be a list of STIX type names")
    if not isinstance(tlp, str):
        raise ValueError(f"partner {name!r}: max_tlp must be a TLP level name")
    if isinstance(confidence, bool) or not isinstance(confidence, int) or not 0 <= confidence <= 100:
        raise ValueError(f"partner {name!r}: min_confidence must be a whole number from 0 to 100")
    if not isinstance(anonymous, bool):
        raise ValueError(f"partner {name!r}: anonymous must be true or false")
    return PartnerPolicy(
        name=name,
        organisation=organisation,
        max_tlp=TLP.parse(tlp),
        allowed_types=frozenset(types) if types is not None else None,
        min_confidence=confidence,
        anonymous=anonymous,
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """Why one object was withheld from a partner (for the audit trail; holds no object content)."""

    object_id: str
    reason: str


# Objects every bundle needs to stay valid: they pass the type and confidence filters.
_STRUCTURAL = frozenset({"marking-definition", "extension-definition", "language-content"})
# Reference knowledge and links, not claims of ours: the confidence filter does not apply (SCOs have no
# ``created`` and no confidence at all; a relationship goes when either end is withheld).
_NO_CONFIDENCE = frozenset({"identity", "attack-pattern", "vulnerability", "location", "relationship"})
# An object whose required reference points to a withheld object is itself withheld.
_REQUIRED_REFS = ("source_ref", "target_ref", "sighting_of_ref")
# Containers that are invalid without members.
_NEEDS_MEMBERS = frozenset({"report", "grouping", "observed-data", "note", "opinion"})


@dataclass(frozen=True, slots=True)
class SharingPolicy:
    """Applies TLP 2.0 and a partner's rules to STIX objects; unmarked objects count as ``default_tlp``."""

    default_tlp: TLP = TLP.AMBER
    community_identity: Mapping[str, Any] | None = None

    def prepare(
        self,
        objects: Sequence[Mapping[str, Any]],
        partner: PartnerPolicy,
        transforms: Iterable[Transform] = (),
    ) -> list[StixObject]:
        return self.decide(objects, partner, transforms)[0]

    def decide(
        self,
        objects: Sequence[Mapping[str, Any]],
        partner: PartnerPolicy,
        transforms: Iterable[Transform] = (),
    ) -> tuple[list[StixObject], list[Decision]]:
        """Objects the partner may receive (transformed copies) and the reasons for every one withheld."""
        work: list[StixObject] = [dict(o) for o in objects]
        for transform in transforms:
            work = transform(work)
        withheld: list[Decision] = []
        kept: dict[str, StixObject] = {}
        for obj in work:
            reason = self._refusal(obj, partner)
            if reason is None:
                kept[str(obj.get("id"))] = obj
            else:
                withheld.append(Decision(str(obj.get("id")), reason))
        withheld.extend(_drop_dangling(kept))
        out = list(kept.values())
        if partner.anonymous:
            out = self._anonymise(out)
        return out, withheld

    def _refusal(self, obj: Mapping[str, Any], partner: PartnerPolicy) -> str | None:
        otype = str(obj.get("type", ""))
        if otype == "marking-definition":
            level = tlp_of_marking(str(obj.get("id")))
            if level is TLP.RED:
                return "TLP:RED marking is not used in anything that leaves"
            return None
        level = tlp_of(obj) or self.default_tlp
        if level is TLP.RED:
            return "TLP:RED never leaves"
        if level.rank > partner.max_tlp.rank:
            return f"{level.label} is above the partner's ceiling {partner.max_tlp.label}"
        if level is TLP.AMBER_STRICT:
            recipients = obj.get(RECIPIENTS_PROPERTY)
            if recipients is not None and partner.organisation not in recipients:
                return "TLP:AMBER+STRICT and the partner is not a named recipient"
        if otype in _STRUCTURAL:
            return None
        if otype == "identity" and partner.allowed_types is not None:
            return None  # identities are attribution, kept unless anonymous (handled later)
        if partner.allowed_types is not None and otype not in partner.allowed_types:
            return f"type {otype!r} is not shared with this partner"
        if partner.min_confidence > 0 and "created" in obj and otype not in _NO_CONFIDENCE:
            confidence = obj.get("confidence")
            if confidence is None:
                return "no confidence stated and the partner requires a minimum"
            if int(confidence) < partner.min_confidence:
                return f"confidence {confidence} below the partner's minimum {partner.min_confidence}"
        return None

    def _anonymise(self, objects: list[StixObject]) -> list[StixObject]:
        community = dict(self.community_identity or COMMUNITY_IDENTITY)
        cid = str(community["id"])
        producers = {str(o["created_by_ref"]) for o in objects if o.get("created_by_ref")}
        producers.discard(cid)
        out: list[StixObject] = []
        for obj in objects:
            if obj.get("type") == "identity" and obj.get("id") in producers:
                continue  # our own identity does not travel when attribution is anonymous
            out.append({k: _swap_refs(k, v, producers, cid) for k, v in obj.items()})
        if producers and not any(o.get("id") == cid for o in out):
            out.insert(0, community)
        return out


def _swap_refs(key: str, value: Any, producers: set[str], cid: str) -> Any:
    """Point every reference to one of our identities (creator, where sighted) at the community."""
    if key.endswith("_ref") and isinstance(value, str) and value in producers:
        return cid
    if key.endswith("_refs") and isinstance(value, list):
        swapped = [cid if r in producers else r for r in value]
        return list(dict.fromkeys(swapped))
    return value


def _drop_dangling(kept: dict[str, StixObject]) -> list[Decision]:
    """Remove references to withheld objects; withhold objects that are meaningless without them."""
    withheld: list[Decision] = []
    changed = True
    while changed:
        changed = False
        for oid, obj in list(kept.items()):
            missing = [r for r in _REQUIRED_REFS if r in obj and obj[r] not in kept]
            if missing:
                del kept[oid]
                withheld.append(Decision(oid, f"refers to a withheld object ({missing[0]})"))
                changed = True
                continue
            for key, value in list(obj.items()):
                if key.endswith("_refs") and key != "object_marking_refs" and isinstance(value, list):
                    left = [r for r in value if r in kept or not _is_sdo_ref(r)]
                    if len(left) != len(value):
                        if left or key == "object_refs":
                            obj[key] = left  # an empty object_refs withholds the container below
                        else:
                            del obj[key]  # STIX forbids empty lists; the other *_refs are optional
                elif (
                    key.endswith("_ref")
                    and key not in _REQUIRED_REFS
                    and key != "created_by_ref"
                    and isinstance(value, str)
                    and _is_sdo_ref(value)
                    and value not in kept
                ):
                    del obj[key]
            if obj.get("type") in _NEEDS_MEMBERS and "object_refs" in obj and not obj["object_refs"]:
                del kept[oid]
                withheld.append(Decision(oid, "all of its members were withheld"))
                changed = True
            elif not obj.get("object_marking_refs", True):
                del obj["object_marking_refs"]
    return withheld


def _is_sdo_ref(ref: object) -> bool:
    return isinstance(ref, str) and "--" in ref and not ref.startswith("marking-definition--")


def prepare(
    objects: Sequence[Mapping[str, Any]],
    partner: PartnerPolicy,
    transforms: Iterable[Transform] = (),
) -> list[StixObject]:
    """``SharingPolicy().prepare(...)`` with the defaults (unmarked objects count as TLP:AMBER)."""
    return SharingPolicy().prepare(objects, partner, transforms)
