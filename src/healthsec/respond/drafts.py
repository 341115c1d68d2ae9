"""Breach-notification drafts pre-filled from a case (Markdown, then PDF); a person completes and sends them.

Pure: the facts come in as a :class:`DraftFacts`; nothing here reads a store or sends anything. The
drafts carry counts and categories, never a patient's identity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

TODO = "_(to complete)_"

_TITLES = {
    "gdpr": "Personal data breach notification to the supervisory authority (GDPR Art. 33)",
    "nis2": "Significant incident: early warning / incident notification (NIS2 Art. 23)",
    "hipaa": "Breach of unsecured protected health information (45 CFR 164.404-408)",
}


@dataclass(frozen=True)
class DraftFacts:
    """What the case tells; None where the evidence does not say (the draft then asks a person)."""

    case_id: str
    organisation: str
    title: str
    summary: Sequence[str]
    first_seen: datetime | None
    last_seen: datetime | None
    aware_at: datetime | None
    severity: str
    data_categories: Sequence[str]
    people: int | None
    records: int | None
    estimate_basis: str
    tactics: Sequence[str]
    measures: Sequence[str]
    contact: str | None
    clocks: Sequence[dict[str, Any]]
    ongoing: bool


def _ts(ts: datetime | None) -> str:
    return TODO if ts is None else ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _n(value: int | None, unit: str) -> str:
    return f"approximately {value:,} {unit} (estimated from the evidence)" if value is not None else TODO


_CONSEQUENCES = {
    "health": "disclosure of health information; distress and discrimination risk for the patients concerned",
    "personal": "disclosure or loss of personal data of staff or patients",
    "imaging": "disclosure of diagnostic images with their identifying headers",
    "credentials": "account takeover and further access to patient systems",
    "clinical_device": "wrong readings or unavailable devices; possible harm to patient safety",
}


def render_markdown(f: DraftFacts, regime: str) -> str:
    """The draft for one regime (gdpr, nis2 or hipaa) as Markdown."""
    if regime not in _TITLES:
        raise ValueError(f"no draft for regime {regime!r}: use gdpr, nis2 or hipaa")
    cats = ", ".join(f.data_categories) or TODO
    lines = [
        f"# {_TITLES[regime]}",
        "",
        f"DRAFT prepared by healthsec from case `{f.case_id}` - review, complete and send it yourself. "
        "Nothing is sent to an authority automatically.",
        "",
        "## Organisation and contact point",
        f"- Organisation: {f.organisation}",
        f"- Contact point (DPO / security officer): {f.contact or TODO}",
        "",
        "## What happened",
        f"- Case: {f.title} (severity {f.severity})",
        *[f"- {s}" for s in f.summary],
        f"- ATT&CK tactics observed: {', '.join(f.tactics) or TODO}",
        f"- First malicious activity seen: {_ts(f.first_seen)}; last: {_ts(f.last_seen)}",
        f"- Became aware: {_ts(f.aware_at)}",
        f"- Still ongoing: {'yes' if f.ongoing else 'no'}",
        "",
        "## Data and people affected",
        f"- Categories of data: {cats}",
        f"- Data subjects / individuals: {_n(f.people, 'people')}",
        f"- Records: {_n(f.records, 'records')}",
        f"- How estimated: {f.estimate_basis}",
        "",
        "## Likely consequences",
        *([f"- {_CONSEQUENCES[c]}" for c in f.data_categories if c in _CONSEQUENCES] or [f"- {TODO}"]),
        "",
        "## Measures taken or proposed",
        *([f"- {m}" for m in f.measures] or [f"- {TODO}"]),
        "",
    ]
    if regime == "gdpr":
        lines += [
            "## Art. 33(3) checklist",
            "- (a) nature, categories and approximate numbers of data subjects and records: above",
            "- (b) name and contact details of the DPO or other contact point: above",
            "- (c) likely consequences: above",
            "- (d) measures taken or proposed, including to mitigate adverse effects: above",
            f"- Reasons for any delay beyond 72 hours (Art. 33(1)): {TODO}",
            f"- High risk to the people concerned, so Art. 34 notice to them: {TODO}",
            "",
        ]
    elif regime == "nis2":
        lines += [
            "## Art. 23(4) content",
            f"- Suspected unlawful or malicious act: {'yes' if f.tactics else TODO}",
            f"- Possible cross-border impact: {TODO}",
            f"- Severity and impact, indicators of compromise: severity {f.severity}; {TODO}",
            "",
        ]
    else:
        lines += [
            "## Four-factor risk assessment (164.402(2))",
            f"1. Nature and extent of the PHI involved: {cats}; {_n(f.records, 'records')}",
            f"2. The unauthorised person who used or received it: {TODO}",
            f"3. Whether the PHI was actually acquired or viewed: {TODO}",
            f"4. Extent to which the risk has been mitigated: {'; '.join(f.measures) or TODO}",
            "",
            "## Notice to individuals (164.404(c))",
            f"- What happened, with dates: see above; what individuals should do: {TODO}",
            "",
        ]
    if f.clocks:
        lines += ["## Deadlines", "", "| obligation | due (UTC) | state |", "|---|---|---|"]
        lines += [
            f"| {c['obligation']} | {c['due'] or 'no fixed deadline'} | {c['state']} |" for c in f.clocks
        ]
        lines.append("")
    return "\n".join(lines)


def _latin1(text: str) -> str:
    return (
        text.replace("\u2192", "->")
        .replace("\u2013", "-")
        .replace("\u2014", "-")
        .encode("latin-1", "replace")
        .decode("latin-1")
    )


def render_pdf(markdown: str) -> bytes:
    """The Markdown draft as a simple PDF (fpdf2, core fonts; headings, bullets and table rows)."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    for raw in markdown.splitlines():
        line = _latin1(raw.replace("`", "").replace("_(to complete)_", "[to complete]"))
        if line.startswith("# "):
            pdf.set_font("Helvetica", "B", 14)
            pdf.multi_cell(width, 7, line[2:], new_x="LMARGIN", new_y="NEXT")
        elif line.startswith("## "):
            pdf.ln(2)
            pdf.set_font("Helvetica", "B", 11)
            pdf.multi_cell(width, 6, line[3:], new_x="LMARGIN", new_y="NEXT")
        elif line.startswith("|---"):
            continue
        elif line.startswith("|"):
            pdf.set_font("Courier", "", 8)
            cells = [c.strip() for c in line.strip("|").split("|")]
            pdf.multi_cell(width, 4.5, "  ".join(cells), new_x="LMARGIN", new_y="NEXT")
        elif line.strip():
            pdf.set_font("Helvetica", "", 9.5)
            pdf.multi_cell(width, 5, line, new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.ln(2)
    return bytes(pdf.output())
