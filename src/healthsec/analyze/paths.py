"""Attack graph (networkx) over zones, reachability rules and vulnerabilities: top-k paths and fixes."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import networkx as nx

from healthsec.analyze.attack import AttackKB
from healthsec.analyze.inventory import canonical_zone, exposure
from healthsec.analyze.risk import RiskWeights, asset_impact
from healthsec.analyze.vulns import exploit_likelihood
from healthsec.model import Asset, Criticality
from healthsec.model.assets import AssetProfile
from healthsec.model.vulns import Vulnerability

SOURCE = "attacker"
ENTRIES = {
    "entry:internet": ("the internet edge", "T1190"),
    "entry:phishing": ("phishing e-mail", "T1566"),
    "entry:vendor": ("vendor remote access", "T1133"),
}
# Chance that a reached asset without a known CVE still falls (weak or default credentials,
# misconfiguration): a documented assumption, not a measured rate.
BASELINE_COMPROMISE = 0.1
PHISHING_SUCCESS = 0.3
VENDOR_ACCESS_ABUSE = 0.4
# How much each fix keeps of an edge's probability (0 removes the edge).
SEGMENT_KEEP = 0.1
VENDOR_MFA_KEEP = 0.2
PHISHING_FILTER_KEEP = 0.5
FIX_MITIGATIONS: Mapping[str, tuple[str, ...]] = {
    "patch": ("M1051",),
    "firewall": ("M1037", "M1030"),
    "segment": ("M1030", "M1035"),
    "isolate": ("M1030", "M1037"),
    "vendor-mfa": ("M1032", "M1035"),
    "phishing": ("M1017", "M1021", "M1054"),
}


@dataclass(frozen=True, slots=True)
class ReachRule:
    """Traffic from hosts in zone ``src`` may reach hosts in zone ``dst``."""

    src: str
    dst: str
    note: str = ""


# A typical hospital network (assumption; pass your own rules with ``healthsec paths --rules FILE``).
DEFAULT_RULES: tuple[ReachRule, ...] = (
    ReachRule("dmz", "servers", "web portals call the EHR / integration engine"),
    ReachRule("corporate", "servers", "staff use the EHR and file servers"),
    ReachRule("corporate", "dmz", "staff reach published services"),
    ReachRule("corporate", "clinical", "flat office-to-clinical network"),
    ReachRule("clinical", "servers", "clinical workstations use the EHR, PACS, LIS"),
    ReachRule("clinical", "medical-devices", "clinicians configure devices and view modalities"),
    ReachRule("servers", "clinical", "integration engine and PACS push to clinical systems"),
    ReachRule("servers", "medical-devices", "HL7 / DICOM to devices and modalities"),
    ReachRule("medical-devices", "servers", "devices send HL7 results and DICOM images"),
    ReachRule("vendor", "medical-devices", "vendor remote support"),
    ReachRule("vendor", "servers", "vendor remote support"),
    ReachRule("building", "servers", "building management reports to servers"),
)


@dataclass(frozen=True, slots=True)
class Step:
    node: str
    label: str
    probability: float
    technique: str | None


@dataclass(frozen=True, slots=True)
class AttackPath:
    target: str
    target_name: str
    likelihood: float
    impact: float
    risk: float
    steps: tuple[Step, ...]

    def describe(self) -> str:
        return " -> ".join(s.label for s in self.steps)


@dataclass(frozen=True, slots=True)
class Fix:
    kind: str
    target: str
    description: str
    mitigations: tuple[str, ...]
    risk_before: float
    risk_after: float

    @property
    def reduction(self) -> float:
        return round(self.risk_before - self.risk_after, 4)


def _w(p: float) -> float:
    return -math.log(max(p, 1e-9))


class AttackGraph:
    """Entry points -> assets -> zones -> assets; edge probability p, weight -log p (no I/O)."""

    def __init__(
        self,
        assets: Iterable[Asset],
        profiles: Iterable[AssetProfile] = (),
        vulns: Iterable[Vulnerability] = (),
        rules: Sequence[ReachRule] = DEFAULT_RULES,
        weights: RiskWeights | None = None,
    ) -> None:
        self.assets = {a.id: a for a in assets}
        self.profiles = {p.asset_id: p for p in profiles}
        self.vulns: dict[str, list[Vulnerability]] = {}
        for v in vulns:
            if v.asset_id in self.assets:
                self.vulns.setdefault(v.asset_id, []).append(v)
        self.rules = [ReachRule(canonical_zone(r.src), canonical_zone(r.dst), r.note) for r in rules]
        self.weights = weights or RiskWeights()
        self.zone = {a.id: canonical_zone(a.zone) for a in self.assets.values()}
        self.impact = {
            aid: asset_impact(a, self.profiles.get(aid), self.weights)[0] for aid, a in self.assets.items()
        }
        self.graph = self._build()

    # ---- construction -----------------------------------------------------------------------
    def compromise(self, asset_id: str, skip: frozenset[str] = frozenset()) -> tuple[float, str, str]:
        """Chance to compromise a reached asset, the reason, and the ATT&CK technique."""
        best = (BASELINE_COMPROMISE, "weak or default credentials (assumed)", "T1078")
        for v in self.vulns.get(asset_id, ()):
            if v.cve in skip:
                continue
            p, why = exploit_likelihood(v)
            if p > best[0]:
                best = (p, why, "T1210")
        return best

    def _add(
        self, g: nx.DiGraph, u: str, v: str, p: float, label: str, technique: str | None, fix: str
    ) -> None:
        g.add_edge(u, v, p=p, weight=_w(p), label=label, technique=technique, fix=fix)

    def _build(self) -> nx.DiGraph:
        g = nx.DiGraph()
        for entry in ENTRIES:
            self._add(g, SOURCE, entry, 1.0, ENTRIES[entry][0], None, "")
        allowed: dict[str, list[str]] = {}
        for r in self.rules:
            allowed.setdefault(r.src, []).append(r.dst)
        by_zone: dict[str, list[str]] = {}
        for aid, zone in self.zone.items():
            by_zone.setdefault(zone, []).append(aid)
        for aid, a in self.assets.items():
            zone = self.zone[aid]
            prof = self.profiles.get(aid)
            p, why, tech = self.compromise(aid)
            node = f"asset:{aid}"
            exposed = exposure(a, prof)
            if exposed["internet"][0]:
                tech_in = "T1190" if tech == "T1210" else "T1133"
                self._add(g, "entry:internet", node, p, f"{a.name} ({why})", tech_in, f"patch:{aid}")
            if exposed["phishing"][0]:
                self._add(
                    g,
                    "entry:phishing",
                    node,
                    PHISHING_SUCCESS,
                    f"{a.name} (user opens a lure)",
                    "T1566",
                    "phishing",
                )
            if exposed["vendor"][0]:
                self._add(
                    g,
                    "entry:vendor",
                    node,
                    VENDOR_ACCESS_ABUSE,
                    f"{a.name} (vendor account abused)",
                    "T1133",
                    "vendor-mfa",
                )
            for dst in sorted({zone, *allowed.get(zone, ())}):
                if dst in by_zone:
                    fix = "" if dst == zone else f"firewall:{zone}>{dst}"
                    self._add(g, node, f"zone:{dst}", 1.0, f"reach zone {dst}", None, fix)
            self._add(g, f"zone:{zone}", node, p, f"{a.name} ({why})", tech, f"patch:{aid}")
        return g

    def assume_compromised(self, asset_ids: Iterable[str], label: str, *, only: bool = True) -> int:
        """Start paths from assets an incident already holds (p = 1); with ``only``, from nowhere else.

        This answers "where can the attacker of this incident go next, and which fix cuts it".
        Returns how many of the assets are in the graph.
        """
        nodes = sorted(f"asset:{a}" for a in set(asset_ids) if f"asset:{a}" in self.graph)
        if only:
            for entry in ENTRIES:
                if self.graph.has_edge(SOURCE, entry):
                    self.graph.remove_edge(SOURCE, entry)
        self._add(self.graph, SOURCE, "entry:incident", 1.0, label, None, "")
        for n in nodes:
            name = self.assets[n.removeprefix("asset:")].name
            self._add(self.graph, "entry:incident", n, 1.0, f"{name} (already compromised)", None, "")
        return len(nodes)

    # ---- paths ------------------------------------------------------------------------------
    def targets(self, min_criticality: Criticality = Criticality.PATIENT_MONITORING) -> list[str]:
        return [aid for aid, a in self.assets.items() if a.criticality >= min_criticality]

    def _path(self, nodes: Sequence[str], target: str) -> AttackPath:
        steps = [Step(SOURCE, "attacker", 1.0, None)]
        prob = 1.0
        for u, v in itertools.pairwise(nodes):
            d = self.graph.edges[u, v]
            prob *= d["p"]
            steps.append(Step(v, str(d["label"]), float(d["p"]), d["technique"]))
        impact = self.impact[target]
        return AttackPath(
            target=target,
            target_name=self.assets[target].name,
            likelihood=round(prob, 6),
            impact=impact,
            risk=round(prob * impact, 6),
            steps=tuple(steps),
        )

    def best_paths(self, targets: Iterable[str] | None = None, top: int = 5) -> list[AttackPath]:
        """The most likely path to each target (one Dijkstra), ranked by likelihood x impact."""
        tset = list(targets) if targets is not None else self.targets()
        _dist, paths = nx.single_source_dijkstra(self.graph, SOURCE, weight="weight")
        out = [self._path(paths[f"asset:{t}"], t) for t in tset if f"asset:{t}" in paths]
        out.sort(key=lambda p: (-p.risk, p.target))
        return out[:top]

    def k_paths(self, target: str, k: int = 5) -> list[AttackPath]:
        """The k most likely simple paths to one asset (Yen's algorithm in networkx)."""
        node = f"asset:{target}"
        if node not in self.graph:
            raise KeyError(target)
        try:
            gen = nx.shortest_simple_paths(self.graph, SOURCE, node, weight="weight")
            return [self._path(p, target) for p in itertools.islice(gen, k)]
        except nx.NetworkXNoPath:
            return []

    def total_risk(self, targets: Sequence[str]) -> float:
        """Sum over targets of impact x likelihood of the most likely path (the measure fixes reduce)."""
        dist = nx.single_source_dijkstra_path_length(self.graph, SOURCE, weight="weight")
        return sum(self.impact[t] * math.exp(-dist[f"asset:{t}"]) for t in targets if f"asset:{t}" in dist)

    # ---- fixes ------------------------------------------------------------------------------
    def _edges_for(self, fix: str) -> list[tuple[str, str, float]]:
        """(u, v, new p) for every edge a fix changes."""
        kind, _, arg = fix.partition(":")
        g = self.graph
        if kind == "firewall":
            src, dst = arg.split(">", 1)
            return [(f"asset:{a}", f"zone:{dst}", 0.0) for a, z in self.zone.items() if z == src]
        if kind == "patch":
            aid, _, cve = arg.partition("|")
            p = self.compromise(aid, frozenset({cve}))[0]
            node = f"asset:{aid}"
            return [
                (u, node, p) for u in g.predecessors(node) if g.edges[u, node]["fix"].startswith("patch:")
            ]
        if kind == "isolate":
            hub = f"zone:{arg}"
            return [
                (f"asset:{a}", hub, g.edges[f"asset:{a}", hub]["p"] * SEGMENT_KEEP)
                for a, z in self.zone.items()
                if z != arg and g.has_edge(f"asset:{a}", hub)
            ]
        if kind == "segment":
            node = f"asset:{arg}"
            return [(u, node, g.edges[u, node]["p"] * SEGMENT_KEEP) for u in g.predecessors(node)]
        if kind == "vendor-mfa":
            return [
                ("entry:vendor", v, g.edges["entry:vendor", v]["p"] * VENDOR_MFA_KEEP)
                for v in g.successors("entry:vendor")
            ]
        if kind == "phishing":
            return [
                ("entry:phishing", v, g.edges["entry:phishing", v]["p"] * PHISHING_FILTER_KEEP)
                for v in g.successors("entry:phishing")
            ]
        raise ValueError(f"unknown fix {fix!r}")

    def _apply(self, changes: list[tuple[str, str, float]]) -> list[tuple[str, str, float]]:
        undo = []
        for u, v, p in changes:
            d = self.graph.edges[u, v]
            undo.append((u, v, d["p"]))
            d["p"], d["weight"] = p, (math.inf if p <= 0 else _w(p))
        return undo

    def _candidates(self, paths: Iterable[AttackPath]) -> set[str]:
        out: set[str] = set()
        for path in paths:
            out.add(f"segment:{path.target}")
            out.add(f"isolate:{self.zone[path.target]}")
            for u, v in itertools.pairwise([s.node for s in path.steps]):
                fix = str(self.graph.edges[u, v]["fix"])
                if fix.startswith("patch:"):
                    aid = v.removeprefix("asset:")
                    best = max(self.vulns.get(aid, ()), key=lambda x: exploit_likelihood(x)[0], default=None)
                    if best is not None:
                        out.add(f"patch:{aid}|{best.cve}")
                elif fix:
                    out.add(fix)
        return out

    def _describe(self, fix: str) -> tuple[str, str]:
        kind, _, arg = fix.partition(":")
        if kind == "patch":
            aid, _, cve = arg.partition("|")
            return kind, f"patch {cve} on {self.assets[aid].name}"
        if kind == "firewall":
            src, dst = arg.split(">", 1)
            return kind, f"firewall rule: block zone {src} -> zone {dst} (allow-list only needed flows)"
        if kind == "segment":
            return kind, f"segment {self.assets[arg].name} into its own enclave (allow-listed peers only)"
        if kind == "isolate":
            return kind, f"segment zone {arg}: deny inbound from other zones except allow-listed flows"
        if kind == "vendor-mfa":
            return kind, "require MFA and per-session approval for vendor remote access"
        return kind, "e-mail filtering and phishing training for exposed users"

    def recommend(
        self, max_fixes: int = 5, targets: Sequence[str] | None = None, kb: AttackKB | None = None
    ) -> list[Fix]:
        """Greedy (lazy, CELF-style) choice of the fixes that cut the most path risk, in order.

        Each step picks the fix with the largest drop in total risk given the fixes already chosen; gains are
        re-evaluated lazily because a fix rarely gains more after another fix (diminishing returns).
        """
        tset = list(targets) if targets is not None else self.targets()
        current = self.total_risk(tset)
        heap: list[tuple[float, str]] = []
        seen: set[str] = set()
        chosen: list[Fix] = []
        applied: list[list[tuple[str, str, float]]] = []
        while len(chosen) < max_fixes:
            # new best paths appear once a fix has cut the old ones: their fixes become candidates too
            for c in sorted(self._candidates(self.best_paths(tset, top=max(10, 2 * max_fixes))) - seen):
                seen.add(c)
                undo = self._apply(self._edges_for(c))
                heap.append((current - self.total_risk(tset), c))
                self._apply(undo)
            picked = None
            while heap:
                heap.sort(key=lambda x: (-x[0], x[1]))
                _gain, c = heap.pop(0)
                undo = self._apply(self._edges_for(c))
                after = self.total_risk(tset)
                fresh = current - after
                if heap and fresh < heap[0][0] - 1e-12:
                    self._apply(undo)
                    heap.append((fresh, c))
                    continue
                if fresh <= 1e-9:
                    self._apply(undo)
                    break
                picked = (c, undo, after)
                break
            if picked is None:
                break
            c, undo, after = picked
            kind, text = self._describe(c)
            mits = FIX_MITIGATIONS[kind]
            if kb is not None:
                names = [f"{m} {mm.name}" for m in mits if (mm := kb.mitigation(m)) is not None]
                text += f" [ATT&CK: {'; '.join(names)}]"
            chosen.append(Fix(kind, c, text, mits, round(current, 4), round(after, 4)))
            applied.append(undo)
            current = after
        for undo in reversed(applied):
            self._apply(undo)
        return chosen
