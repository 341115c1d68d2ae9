"""ATT&CK knowledge (Enterprise + ICS): techniques, tactics in kill-chain order, mitigations, groups."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from healthsec.analyze.attack_build import ICS_ANCHORS
from healthsec.model import Alert
from healthsec.model.attack import HealthcareActor, Mitigation, Tactic, Technique

_TID = re.compile(r"^T\d{4}(\.\d{3})?$")
_TAG = re.compile(r"^(?:attack\.)?(t\d{4}(?:\.\d{3})?)$", re.IGNORECASE)


# ATT&CK v19 renamed Defense Evasion to Stealth (same id) and split Defense Impairment (TA0112) off it
V19_TACTICS = {"ta0112": "ta0005", "defense-impairment": "ta0005", "stealth": "ta0005"}


def _norm(key: str) -> str:
    return key.strip().lower().replace("_", "-").replace(" ", "-").removeprefix("attack.")


class AttackKB:
    """Look-ups over the compact ATT&CK document (built by ``healthsec attack update``); no I/O."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc
        self._techniques: dict[str, Technique] = {}
        self._mitigations: dict[str, Mitigation] = {}
        self._groups: dict[str, dict[str, Any]] = {}
        self._revoked: dict[str, str] = {}
        self._tactics: dict[str, Tactic] = {}
        self._tactic_keys: dict[str, Tactic] = {}
        domains: Mapping[str, Any] = doc.get("domains", {})
        # the unified kill chain: Enterprise order, ICS-only tactics placed by their anchors
        enterprise = domains.get("enterprise-attack")
        base = [t["shortname"] for t in enterprise["tactics"]] if enterprise else []
        rank = {name: i * 10 for i, name in enumerate(base)}
        for dname, part in domains.items():
            for i, t in enumerate(part["tactics"]):
                short = str(t["shortname"])
                if short not in rank:
                    anchor, offset = ICS_ANCHORS.get(short, ("", 0))
                    rank[short] = rank[anchor] + offset if anchor in rank else 1000 + i
                tac = Tactic(str(t["id"]), short, str(t["name"]), dname, rank[short])
                self._tactics.setdefault(f"{dname}:{short}", tac)
                for key in (tac.id.lower(), _norm(short), _norm(tac.name)):
                    self._tactic_keys.setdefault(key, tac)
            for tid, t in part["techniques"].items():
                self._techniques[tid] = Technique(
                    id=tid,
                    name=str(t["name"]),
                    domain=dname,
                    tactics=tuple(t["tactics"]),
                    parent=t.get("parent"),
                    platforms=tuple(t.get("platforms", ())),
                    description=str(t.get("description", "")),
                    mitigations=tuple(t.get("mitigations", ())),
                    data_components=tuple(t.get("data_components", ())),
                    groups=tuple(t.get("groups", ())),
                )
            for mid, m in part["mitigations"].items():
                self._mitigations[mid] = Mitigation(mid, str(m["name"]), str(m.get("description", "")))
            for gid, g in part["groups"].items():
                cur = self._groups.setdefault(gid, {**g, "techniques": []})
                cur["techniques"] = sorted(set(cur["techniques"]) | set(g["techniques"]))
            self._revoked.update(part.get("revoked", {}))
        self._rank = rank
        self._actors = tuple(
            HealthcareActor(
                name=a["name"],
                synonyms=tuple(a.get("synonyms", ())),
                country=a.get("country"),
                evidence=a["evidence"],
                attack_group=a.get("attack_group"),
            )
            for a in doc.get("healthcare_actors", ())
        )

    # ---- techniques -------------------------------------------------------------------------
    def resolve(self, technique_id: str) -> str | None:
        """The current id for ``technique_id`` (a Sigma tag like ``attack.t1059.001`` is accepted).

        Revoked ids follow their replacement; an unknown sub-technique falls back to its parent
        (SigmaHQ already uses ATT&CK v19 ids that the pinned v18.1 lacks); otherwise None.
        """
        m = _TAG.match(technique_id.strip())
        if not m:
            return None
        tid = m.group(1).upper()
        for _ in range(5):
            if tid in self._techniques:
                return tid
            if tid in self._revoked:
                tid = self._revoked[tid]
                continue
            break
        if "." in tid:
            return self.resolve(tid.split(".", 1)[0])
        return None

    def technique(self, technique_id: str) -> Technique | None:
        tid = self.resolve(technique_id)
        return None if tid is None else self._techniques[tid]

    def techniques(self, domain: str | None = None) -> list[Technique]:
        return [t for t in self._techniques.values() if domain is None or t.domain == domain]

    # ---- tactics ----------------------------------------------------------------------------
    def tactic(self, key: str) -> Tactic | None:
        """A tactic by id (TA0001), short name (initial-access), name or Sigma tag (attack.initial_access).

        ATT&CK v19 tactics a pinned older copy lacks (SigmaHQ already tags with them) read as the v18
        tactic that held their techniques, so such rules keep a place in the kill chain."""
        norm = _norm(key)
        found = self._tactic_keys.get(norm)
        if found is None and norm in V19_TACTICS:
            found = self._tactic_keys.get(V19_TACTICS[norm])
        return found

    def tactic_rank(self, key: str) -> int | None:
        """Position in the unified kill chain (lower comes first); None for an unknown tactic."""
        tac = self.tactic(key)
        return None if tac is None else tac.rank

    def kill_chain(self) -> list[str]:
        """All tactic short names in kill-chain order (Enterprise, with ICS-only tactics slotted in)."""
        return sorted(self._rank, key=lambda s: (self._rank[s], s))

    def tactics_for(self, techniques: Iterable[str], fallback: Iterable[str] = ()) -> tuple[str, ...]:
        """Tactic short names for the techniques (kill-chain order); ``fallback`` tactics fill in for
        technique ids the pinned data does not know (e.g. newer ATT&CK ids used by Sigma rules)."""
        found: set[str] = set()
        unknown = False
        for tid in techniques:
            tech = self.technique(tid)
            if tech is None:
                unknown = True
            else:
                found.update(tech.tactics)
        if unknown or not found:
            for key in fallback:
                tac = self.tactic(key)
                if tac is not None:
                    found.add(tac.shortname)
        return tuple(sorted(found, key=lambda s: (self._rank.get(s, 10_000), s)))

    # ---- mitigations and groups -------------------------------------------------------------
    def mitigation(self, mitigation_id: str) -> Mitigation | None:
        return self._mitigations.get(mitigation_id.strip().upper())

    def mitigations_for(self, technique_id: str) -> list[Mitigation]:
        tech = self.technique(technique_id)
        if tech is None:
            return []
        return [self._mitigations[m] for m in tech.mitigations if m in self._mitigations]

    def group_name(self, group_id: str) -> str | None:
        g = self._groups.get(group_id)
        return None if g is None else str(g["name"])

    def healthcare_actors(self) -> tuple[HealthcareActor, ...]:
        """Threat actors that MISP's galaxy ties to the health sector (with the evidence)."""
        return self._actors

    def healthcare_groups_using(self, technique_id: str) -> list[str]:
        """Names of healthcare-targeting actors whose ATT&CK group uses this technique."""
        tech = self.technique(technique_id)
        if tech is None:
            return []
        used = set(tech.groups)
        return sorted({a.name for a in self._actors if a.attack_group in used})

    def healthcare_groups_matching(self, techniques: Iterable[str], top: int = 3) -> list[tuple[str, int]]:
        """Healthcare-targeting actors whose ATT&CK group uses the most of these techniques (name, count).

        An overlap is a lead for the analyst, not an attribution.
        """
        wanted = {t for t in (self.resolve(x) for x in techniques) if t}
        scored = []
        for actor in self._actors:
            group = self._groups.get(actor.attack_group or "")
            if group is None:
                continue
            # a technique counts when the group uses it or, for a sub-technique, its parent technique
            used = set(group["techniques"]) | {t.split(".", 1)[0] for t in group["techniques"]}
            n = sum(1 for t in wanted if t in used or t.split(".", 1)[0] in used)
            if n:
                scored.append((actor.name, n))
        scored.sort(key=lambda x: (-x[1], x[0]))
        return scored[:top]

    def stats(self) -> dict[str, int]:
        subs = sum(1 for t in self._techniques.values() if t.parent)
        return {
            "techniques": len(self._techniques) - subs,
            "sub_techniques": subs,
            "tactics": len(self._tactics),
            "mitigations": len(self._mitigations),
            "groups": len(self._groups),
            "healthcare_actors": len(self._actors),
            "healthcare_actors_linked_to_attack_groups": sum(1 for a in self._actors if a.attack_group),
        }


def enrich_alert(alert: Alert, kb: AttackKB) -> Alert:
    """Normalise an alert's ATT&CK ids and fill its tactics from its techniques (kill-chain order).

    Ids the pinned copy lacks are kept as given (an analyst may know them); their tactics come from the
    alert's own tactic tags, which is how Sigma rules with ATT&CK v19 ids stay placed in the kill chain.
    """
    techniques = tuple(
        dict.fromkeys(kb.resolve(t) or t.strip().upper().removeprefix("ATTACK.") for t in alert.techniques)
    )
    tactics = kb.tactics_for(techniques, fallback=alert.tactics)
    if techniques == alert.techniques and tactics == alert.tactics:
        return alert
    return replace(alert, techniques=techniques, tactics=tactics)
