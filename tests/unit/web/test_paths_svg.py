"""The attack-path graph in server-side SVG: layered layout, fix badges, every label escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from healthsec.analyze.paths import AttackPath, Fix, Step
from healthsec.web.paths_svg import layout, render

SVG = "{http://www.w3.org/2000/svg}"


def _path(target: str, middle: str, label: str = "") -> AttackPath:
    steps = (
        Step("attacker", "attacker", 1.0, None),
        Step("entry:phishing", "phishing e-mail", 1.0, None),
        Step("asset:ws", "ws-001 (user opens a lure)", 0.3, "T1566"),
        Step(middle, f"reach {middle}", 1.0, None),
        Step(target, label or target.split(":")[-1], 0.1, "T1078"),
    )
    return AttackPath(target, target, 0.03, 0.8, 0.024, steps)


def test_layout_merges_paths_into_layers_and_marks_fixes() -> None:
    paths = [_path("asset:pump-01", "zone:medical-devices"), _path("asset:pump-02", "zone:medical-devices")]
    fixes = [Fix("isolate", "isolate:medical-devices", "segment", ("M1030",), 0.7, 0.07)]
    g = layout(paths, fixes)
    by_id = {n.id: n for n in g.nodes}
    assert len(g.nodes) == 6 and len(g.edges) == 5  # shared prefix drawn once
    assert [by_id[k].col for k in ("attacker", "entry:phishing", "asset:ws", "zone:medical-devices")] == [
        0,
        1,
        2,
        3,
    ]
    assert (by_id["asset:pump-01"].col, by_id["asset:pump-02"].col) == (4, 4)
    assert by_id["asset:pump-01"].row != by_id["asset:pump-02"].row
    assert by_id["asset:pump-01"].kind == "target" and by_id["zone:medical-devices"].fixes == [1]
    root = ET.fromstring(render(g))  # well-formed XML
    assert root.tag == f"{SVG}svg"
    assert len(root.findall(f".//{SVG}rect")) >= 6


def test_labels_are_escaped_and_empty_paths_draw_nothing() -> None:
    evil = '<script>alert(1)</script>" onload="x'
    svg = render(layout([_path("asset:x", "zone:clinical", evil)]), title="<b>t</b>")
    assert "<script>" not in svg and "<b>" not in svg and 'onload="x' not in svg
    root = ET.fromstring(svg)
    texts = "".join(t.text or "" for t in root.iter(f"{SVG}title"))
    assert "<script>alert(1)</script>" in texts  # shown literally
    assert render(layout([])) == ""
