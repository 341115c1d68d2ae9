"""A self-contained HTML report of a run: summary cards, timeline, campaigns, incidents with explanations."""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from healthsec import __version__
from healthsec.model import Alert, Incident

_TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
_COLORS = ("#2563eb", "#c2410c", "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#b45309")


def _timeline_svg(incidents: Sequence[Incident], alerts: Mapping[str, Alert]) -> str:
    shown = list(incidents[:12])
    if not shown:
        return "<p>No incidents.</p>"
    t0 = min(i.first_seen for i in shown).replace(minute=0, second=0, microsecond=0)
    t1 = max(i.last_seen for i in shown)
    span = max((t1 - t0).total_seconds(), 3600.0)
    width, left, row = 1000, 260, 22
    height = row * len(shown) + 30
    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="incident timeline">']
    hours = int(span // 3600) + 1
    step = max(1, hours // 12)
    for h in range(0, hours + 1, step):
        x = left + (h * 3600) / span * (width - left - 10)
        parts.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 18}" stroke="#e2e8f0"/>')
        label = (t0.hour + h) % 24
        parts.append(f'<text x="{x:.1f}" y="{height - 4}" text-anchor="middle">{label:02d}:00</text>')
    for r, inc in enumerate(shown):
        y = r * row + 14
        color = _COLORS[r % len(_COLORS)]
        name = html.escape(inc.title[:40])
        parts.append(f'<text x="0" y="{y + 4}">{name}</text>')
        for aid in inc.alert_ids:
            a = alerts.get(aid)
            if a is None:
                continue
            x = left + (a.ts - t0).total_seconds() / span * (width - left - 10)
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y}" r="{3 + int(a.severity)}" fill="{color}" '
                f'fill-opacity="0.6"><title>{html.escape(a.title)}</title></circle>'
            )
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(counts: Sequence[tuple[str, float]], label: str, color: str = "#2563eb") -> str:
    """Horizontal bars with their values (shared by the run report and the risk-awareness report)."""
    if not counts:
        return "<p>None.</p>"
    top = max(n for _, n in counts) or 1
    height = 22 * len(counts) + 6
    parts = [f'<svg width="700" height="{height}" role="img" aria-label="{html.escape(label)}">']
    for i, (name, n) in enumerate(counts):
        w = 450 * n / top
        shown = f"{n:g}" if isinstance(n, float) else str(n)
        parts.append(
            f'<text x="0" y="{22 * i + 15}">{html.escape(name)}</text>'
            f'<rect x="180" y="{22 * i + 4}" width="{w:.1f}" height="15" fill="{color}"/>'
            f'<text x="{185 + w:.1f}" y="{22 * i + 15}">{shown}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def series_svg(points: Sequence[tuple[datetime, float]], label: str, unit: str = "min") -> str:
    """Points over time (x: date, y: value), e.g. time to detect per incident."""
    if not points:
        return "<p>No data in this period.</p>"
    width, height, left, bottom = 700, 180, 50, 24
    t0, t1 = min(p[0] for p in points), max(p[0] for p in points)
    span = max((t1 - t0).total_seconds(), 1.0)
    top = max(max(v for _, v in points), 1e-9)
    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="{html.escape(label)}">']
    parts.append(f'<text x="0" y="12">{top:.0f} {unit}</text><text x="0" y="{height - bottom}">0</text>')
    parts.append(
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="#94a3b8"/>'
    )
    for ts, v in points:
        x = left + (ts - t0).total_seconds() / span * (width - left - 10)
        y = (height - bottom) - v / top * (height - bottom - 16)
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#c2410c" fill-opacity="0.7">'
            f"<title>{ts:%Y-%m-%d %H:%M}: {v:.1f} {unit}</title></circle>"
        )
    parts.append(f'<text x="{left}" y="{height - 4}">{t0:%Y-%m-%d}</text>')
    parts.append(f'<text x="{width - 70}" y="{height - 4}">{t1:%Y-%m-%d}</text></svg>')
    return "".join(parts)


def _detector_svg(alerts: Sequence[Alert]) -> str:
    return bars_svg(Counter(a.detector for a in alerts).most_common(), "alerts by detector")


def render_report(
    summary: Mapping[str, Any],
    incidents: Sequence[Incident],
    alerts: Sequence[Alert],
    title: str = "simulated hospital day",
) -> str:
    """Render the report page (no scripts, no external resources)."""
    by_id = {a.id: a for a in alerts}
    by_incident: dict[str, list[Alert]] = defaultdict(list)
    for inc in incidents:
        by_incident[inc.id] = sorted((by_id[i] for i in inc.alert_ids if i in by_id), key=lambda a: a.ts)
    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html"]))
    return env.get_template("report.html").render(
        title=title,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        summary=summary,
        incidents=incidents,
        alerts_by_incident=by_incident,
        timeline_svg=_timeline_svg(incidents, by_id),
        detector_svg=_detector_svg(alerts),
        version=__version__,
    )
