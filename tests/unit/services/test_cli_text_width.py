"""Text the CLI prints fits 80 columns without cutting a word: tables wrap at spaces, one-line
summaries end with an ellipsis after a whole word."""

from __future__ import annotations

import dataclasses
import io
import re
import sys

import pytest
from usecase_helpers import alert

from healthsec.commands import clinical_hl7_dicom
from healthsec.commands.groups import clip, console, progress

EXPLANATION = (
    "HL7 ORM^O01 from LAB-SYSTEM-WARD-SEVEN to PHARMACY carries an order for patient pseudonym "
    "ptn-9f2c at 03:12 outside the sender's learnt hours; " * 3
).strip()


def test_clip_cuts_at_a_space_with_an_ellipsis() -> None:
    short = clip(EXPLANATION, 60)
    assert len(short) <= 60 and short.endswith(" …")
    words = set(EXPLANATION.split())
    assert all(w in words for w in short.removesuffix(" …").split()), short
    assert clip("a short line", 60) == "a short line"


def test_scan_table_wraps_explanations_at_80_columns() -> None:
    long = dataclasses.replace(alert("a1", "lab-7", 1), explanation=EXPLANATION)
    width = console.width
    console.width = 80
    try:
        with console.capture() as cap:
            clinical_hl7_dicom._print_alerts([long], as_json=False)
    finally:
        console.width = width
    text = cap.get()
    assert max(len(line) for line in text.splitlines()) <= 80, text
    cells = " ".join(re.findall(r"│([^│]*)│\s*$", text, re.MULTILINE))  # the explanation column
    assert " ".join(cells.split()) == " ".join(EXPLANATION.split()), text  # every word whole, in order


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long run shows rich's bar on stderr when it is a terminal; a pipe or a file sees nothing."""
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    with progress("reading captures", total=3) as advance:
        advance(3)
    assert piped.getvalue() == ""
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    with progress("reading captures") as advance:
        advance(0, total=4)
        advance(2)
    assert "reading captures" in tty.getvalue()
