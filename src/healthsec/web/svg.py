"""Geometry for the console's server-side SVG (bar chart, entity graph); templates draw it, escaped."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str  # e.g. "14:00"
    tick: bool  # draw the label under this bar


@dataclass(frozen=True, slots=True)
class BarChart:
    width: int
    height: int
    bars: list[Bar]
    top: int  # the y axis' largest value
    base: float  # y of the x axis


def bar_chart(points: Sequence[tuple[datetime, int]], *, width: int = 720, height: int = 200) -> BarChart:
    """Bars for counts per hour, labelled every 3rd hour; the axis tops out at the largest count."""
    left, bottom, top_pad = 36.0, 22.0, 10.0
    top = max([1, *(n for _, n in points)])
    base = height - bottom
    slot = (width - left - 6) / max(1, len(points))
    bars = []
    for i, (ts, n) in enumerate(points):
        h = (base - top_pad) * n / top
        bars.append(
            Bar(
                x=round(left + i * slot + 1, 1),
                y=round(base - h, 1),
                width=round(max(1.0, slot - 2), 1),
                height=round(h, 1),
                value=n,
                label=ts.strftime("%H:%M"),
                tick=i % 3 == 0,
            )
        )
    return BarChart(width, height, bars, top, base)


@dataclass(frozen=True, slots=True)
class Node:
    key: str
    kind: str
    label: str
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Edge:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True, slots=True)
class Graph:
    width: int
    height: int
    nodes: list[Node]
    edges: list[Edge]
    hidden: int  # nodes left out (the graph shows at most MAX_NODES)


MAX_NODES = 40


def entity_graph(
    nodes: Sequence[tuple[str, str, str]],
    links: Sequence[tuple[str, str]],
    *,
    width: int = 720,
    height: int = 420,
) -> Graph:
    """Nodes (key, kind, label) on rings by kind; edges join entities named by the same alert."""
    shown = list(nodes[:MAX_NODES])
    kinds = sorted({k for _, k, _ in shown}, key=_kind_order)
    cx, cy = width / 2, height / 2
    place: dict[str, tuple[float, float]] = {}
    out = []
    for ring, kind in enumerate(kinds):
        members = [n for n in shown if n[1] == kind]
        radius = (
            0.0 if len(kinds) == 1 and len(members) == 1 else (ring + 1) / len(kinds) * (min(cx, cy) - 40)
        )
        for j, (key, k, label) in enumerate(members):
            angle = 2 * math.pi * j / max(1, len(members)) + ring * 0.4
            x, y = round(cx + radius * math.cos(angle), 1), round(cy + radius * math.sin(angle), 1)
            place[key] = (x, y)
            out.append(Node(key, k, label, x, y))
    edges = [Edge(*place[a], *place[b]) for a, b in links if a in place and b in place and a != b]
    return Graph(width, height, out, edges, max(0, len(nodes) - len(shown)))


_ORDER = ("host", "device", "ip", "ae_title", "application", "user", "patient", "file")


def _kind_order(kind: str) -> int:
    return _ORDER.index(kind) if kind in _ORDER else len(_ORDER)
