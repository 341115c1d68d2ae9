"""Attack paths drawn as a layered graph in server-side SVG (no script; every label escaped)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from healthsec.analyze.paths import AttackPath, Fix

COL_W = 236
ROW_H = 64
NODE_W = 172
NODE_H = 44
PAD = 16
MAX_LABEL = (22, 28)  # characters on a node's first (12 px) and second (10 px) line


@dataclass
class Node:
    id: str
    label: str
    kind: str  # attacker | entry | zone | asset | target
    col: int = 0
    row: int = 0
    fixes: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    probability: float
    technique: str | None


@dataclass(frozen=True)
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int


def _kind(node_id: str, targets: set[str]) -> str:
    if node_id in targets:
        return "target"
    if node_id == "attacker":
        return "attacker"
    return node_id.split(":", 1)[0] if ":" in node_id else "asset"


def _fix_nodes(fix: Fix) -> set[str]:
    """The nodes a fix acts on: the zone it isolates or shields, the asset it patches."""
    kind, _, rest = fix.target.partition(":")
    if kind in ("isolate", "segment"):
        return {f"zone:{rest}"}
    if kind == "firewall":
        return {f"zone:{rest.partition('>')[2]}"}
    if kind == "patch":
        return {f"asset:{rest.rsplit(':', 1)[0]}"}
    if kind in ("vendor-mfa", "phishing"):
        return {f"entry:{'vendor' if kind == 'vendor-mfa' else 'phishing'}"}
    return set()


def layout(paths: Sequence[AttackPath], fixes: Sequence[Fix] = ()) -> Graph:
    """Union of the paths as a left-to-right layered graph: a node's column is the deepest step it
    takes in any path, rows in order of first appearance. Fix numbers (1-based) mark the nodes they cut."""
    nodes: dict[str, Node] = {}
    edges: dict[tuple[str, str], Edge] = {}
    targets = {p.steps[-1].node for p in paths if p.steps}
    for p in paths:
        for depth, step in enumerate(p.steps):
            node = nodes.get(step.node)
            if node is None:
                node = nodes[step.node] = Node(step.node, step.label, _kind(step.node, targets))
            node.col = max(node.col, depth)
        for a, b in zip(p.steps, p.steps[1:], strict=False):
            key = (a.node, b.node)
            old = edges.get(key)
            if old is None or b.probability > old.probability:
                edges[key] = Edge(a.node, b.node, b.probability, b.technique)
    for n, fix in enumerate(fixes, 1):
        for nid in _fix_nodes(fix):
            if nid in nodes:
                nodes[nid].fixes.append(n)
    rows: dict[int, int] = {}
    for node in nodes.values():
        node.row = rows.get(node.col, 0)
        rows[node.col] = node.row + 1
    cols = max((n.col for n in nodes.values()), default=-1) + 1
    height = max(rows.values(), default=0)
    return Graph(list(nodes.values()), list(edges.values()), cols * COL_W + PAD, height * ROW_H + PAD)


def _xy(node: Node) -> tuple[int, int]:
    return PAD + node.col * COL_W, PAD + node.row * ROW_H


def _short(text: str, line: int) -> str:
    limit = MAX_LABEL[line]
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


_FILL = {
    "attacker": "#5c1a1a",
    "entry": "#7a4b00",
    "zone": "#2b3f5c",
    "asset": "#24415e",
    "target": "#8b1c1c",
}


def render(graph: Graph, title: str = "Attack paths") -> str:
    """The graph as one ``<svg>`` element (presentation attributes only, so a strict CSP holds)."""
    if not graph.nodes:
        return ""
    by_id = {n.id: n for n in graph.nodes}
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="paths-graph" role="img" '
        f'viewBox="0 0 {graph.width} {graph.height}" width="{graph.width}" height="{graph.height}" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
        'markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#9aa7b4"/></marker></defs>',
    ]
    for e in graph.edges:
        a, b = by_id[e.src], by_id[e.dst]
        (x1, y1), (x2, y2) = _xy(a), _xy(b)
        x1, y1, x2, y2 = x1 + NODE_W, y1 + NODE_H // 2, x2, y2 + NODE_H // 2
        tip = f"p = {e.probability:.2f}" + (f", {e.technique}" if e.technique else "")
        out.append(
            f'<g class="edge"><title>{escape(a.label)} \u2192 {escape(b.label)}: {escape(tip)}</title>'
            f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#9aa7b4" stroke-width="'
            f'{1 + 3 * e.probability:.1f}" marker-end="url(#arrow)"/>'
            f'<text x="{x2 - 9}" y="{y2 - 6}" font-size="10" fill="#c9d3dd" '
            f'text-anchor="end">{escape(f"{e.probability:.2f}")}</text></g>'
        )
    for n in graph.nodes:
        x, y = _xy(n)
        name, _, why = n.label.partition(" (")
        lines = [_short(name, 0)] + ([_short("(" + why, 1)] if why else [])
        out.append(
            f'<g class="node node-{n.kind}" data-node="{escape(n.id)}"><title>{escape(n.label)}</title>'
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="{_FILL[n.kind]}" '
            f'stroke="{"#ff6b6b" if n.kind == "target" else "#6c7a89"}" stroke-width="1.5"/>'
        )
        for i, line in enumerate(lines):
            size = 12 if i == 0 else 10
            out.append(
                f'<text x="{x + 8}" y="{y + 17 + i * 15}" font-size="{size}" fill="#ffffff">'
                f"{escape(line)}</text>"
            )
        if n.fixes:
            badge = ",".join(str(f) for f in n.fixes[:3])
            out.append(
                f'<g class="fix-badge"><title>cut by fix {escape(badge)}</title>'
                f'<rect x="{x + NODE_W - 34}" y="{y - 8}" width="40" height="16" rx="8" fill="#1f7a4d"/>'
                f'<text x="{x + NODE_W - 14}" y="{y + 4}" font-size="10" fill="#ffffff" '
                f'text-anchor="middle">fix {escape(badge)}</text></g>'
            )
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)
