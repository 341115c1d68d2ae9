"""The risk-awareness report of one organisation for a period: HTML (inline SVG, no scripts) and PDF.

Pure rendering: :class:`AwarenessData` is gathered by ``services.awareness``. Charts reuse the run
report's helpers (``respond.report.bars_svg`` / ``series_svg``) and its stylesheet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from healthsec import __version__
from healthsec.respond.report import bars_svg, series_svg

_TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"


@dataclass(frozen=True)
class AwarenessData:
    org: str
    since: datetime
    until: datetime
    incidents: int
    by_tactic: Sequence[tuple[str, int]]
    by_severity: Sequence[tuple[str, int]]
    detect_minutes: Sequence[tuple[datetime, float]]  # (incident first seen, minutes to first alert)
    respond_minutes: Sequence[tuple[datetime, float]]  # (incident first seen, minutes to its case)
    top_risks: Sequence[Mapping[str, Any]]  # asset, score, patient_safety, explanation
    kev: Sequence[Mapping[str, Any]]  # asset, cve
    open_clocks: Sequence[Mapping[str, Any]]
    community: Sequence[Mapping[str, Any]] = field(default_factory=list)  # technique, ours, community mean
    community_sources: int = 0


def _median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def render_html(d: AwarenessData) -> str:
    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html"]))
    return env.get_template("awareness.html").render(
        d=d,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        tactic_svg=bars_svg(d.by_tactic, "incidents by tactic"),
        severity_svg=bars_svg(d.by_severity, "incidents by severity", color="#c2410c"),
        detect_svg=series_svg(d.detect_minutes, "time to detect"),
        respond_svg=series_svg(d.respond_minutes, "time to respond"),
        community_svg=bars_svg(
            [(f"{c['technique']} ours", c["ours"]) for c in d.community[:10]]
            + [(f"{c['technique']} community", c["community"]) for c in d.community[:10]],
            "ours versus community",
            color="#059669",
        ),
        median_detect=_median([v for _, v in d.detect_minutes]),
        median_respond=_median([v for _, v in d.respond_minutes]),
    )


def render_pdf(d: AwarenessData) -> bytes:
    """The same figures as tables in a PDF (fpdf2 core fonts)."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def head(text: str, size: int = 12) -> None:
        pdf.ln(2)
        pdf.set_font("Helvetica", "B", size)
        pdf.multi_cell(width, 7, text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 9)

    def row(*cells: object) -> None:
        text = "   ".join(str(c) for c in cells).encode("latin-1", "replace").decode("latin-1")
        pdf.multi_cell(width, 5, text, new_x="LMARGIN", new_y="NEXT")

    head(f"Risk-awareness report - {d.org}", 15)
    row(f"Period {d.since:%Y-%m-%d %H:%M} to {d.until:%Y-%m-%d %H:%M} UTC; {d.incidents} incidents")
    md, mr = _median([v for _, v in d.detect_minutes]), _median([v for _, v in d.respond_minutes])
    shown = ["-" if m is None else f"{m:.1f} min" for m in (md, mr)]
    row(f"Median time to detect: {shown[0]}; to respond: {shown[1]}")
    head("Incidents by tactic")
    for name, n in d.by_tactic:
        row(name, n)
    head("Incidents by severity")
    for name, n in d.by_severity:
        row(name, n)
    head("Top risks (patient-safety impact)")
    for r in d.top_risks:
        row(r["asset"], f"risk {r['score']:.1f}", f"patient safety {r['patient_safety']:.2f}")
    head("Known-exploited vulnerabilities (KEV)")
    for k in d.kev or [{"asset": "none", "cve": ""}]:
        row(k["asset"], k["cve"])
    head("Open breach-notification clocks")
    for c in d.open_clocks or [{"case": "none", "regime": "", "obligation": "", "due": "", "state": ""}]:
        row(c["case"], f"{c['regime']}.{c['obligation']}", c["due"], c["state"])
    if d.community:
        head(f"Compared with the sharing community ({d.community_sources} DP aggregates)")
        for c in d.community:
            row(c["technique"], f"ours {c['ours']}", f"community mean {c['community']:.1f}")
    return bytes(pdf.output())
