"""The case page renders every shape a containment request takes (waiting, approved by a playbook without a
person, refused for a target) and hand-added observables without a role; StrictUndefined is on."""

from __future__ import annotations

from dataclasses import dataclass

from healthsec.store.auth import Role
from healthsec.web.core import templates
from healthsec.web.nav import NAV
from healthsec.web.pages.cases import case_view


@dataclass
class _Viewer:
    org: str = "north"
    role: Role = Role.ANALYST
    csrf: str = "tok"
    name: str = "ana"

    @property
    def can_change(self) -> bool:
        return self.role is not Role.AUDITOR


PLAN = {
    "action": "isolate_host",
    "target": "pump-13",
    "adapter": "nac-http",
    "commands": ["POST <nac-api-url>/quarantine {}"],
    "rollback": ["DELETE <nac-api-url>/quarantine/pump-13 {}"],
    "dry_run": True,
    "notes": [],
}
SHOWN = {
    "id": "case-1",
    "title": "<script>alert(1)</script>",
    "status": "open",
    "severity": "critical",
    "opened_at": "2027-03-03T14:30:00+00:00",
    "opened_by": "playbook:x",
    "aware_at": None,
    "incidents": ["inc-1"],
    "data_categories": [],
    "significant": False,
    "jurisdictions": [],
    "resolution": None,
    "lessons": None,
    "tasks": [{"id": "t1", "title": "check", "owner": None, "due": None, "status": "open"}],
    "observables": [
        {"id": "o1", "ts": "2027-03-03T14:30:00+00:00", "actor": "a", "kind": "ip", "value": "10.0.0.1"}
    ],
    "comments": [],
    "attachments": [],
    "containment": [
        {
            "id": "c1",
            "ts": "2027-03-03T14:30:00+00:00",
            "actor": "playbook:x",
            **PLAN,
            "asset": "pump-13",
            "requires_approval": True,
            "approval_reason": "pump-13 is patient-connected",
            "status": "awaiting_approval",
            "ready_at": "2027-03-03T14:30:00+00:00",
            "decided_by": None,
        },
        {
            "id": "c2",
            "ts": "2027-03-03T14:30:00+00:00",
            "actor": "playbook:x",
            **PLAN,
            "target": "192.0.2.9",
            "asset": None,
            "requires_approval": False,
            "approval_reason": "auto",
            "status": "approved",
            "ready_at": "2027-03-03T14:30:00+00:00",
            "decided_by": "playbook:x",
        },
        {
            "id": "c3",
            "ts": "2027-03-03T14:30:00+00:00",
            "actor": "playbook:x",
            "action": "disable_account",
            "target": "SYSTEM",
            "status": "refused",
            "reason": "built-in account",
        },
    ],
    "playbook_runs": [],
    "clocks": [],
    "timeline": [{"ts": "2027-03-03T14:30:00+00:00", "actor": "a", "action": "case.opened", "detail": {}}],
}


def _render(role: Role, live: tuple[str, ...] = (), shown: dict | None = None) -> str:
    shown = shown or SHOWN
    return templates.get_template("case.html").render(
        nav=NAV,
        viewer=_Viewer(role=role),
        csrf="tok",
        path="/cases/case-1",
        poll_s=5.0,
        active="cases",
        title="t",
        case=shown,
        live=list(live),
        statuses=["open", "investigating", "contained"],
        severities=["info", "low", "medium", "high", "critical"],
        observable_kinds=["ip"],
        task_states=["open", "done", "cancelled"],
        all_regimes=["gdpr", "nis2", "hipaa"],
        **case_view(shown),
    )


def test_every_containment_shape_renders_and_text_is_escaped() -> None:
    html = _render(Role.ANALYST)
    assert 'data-approve="c1"' in html and 'data-approve="c2"' not in html  # only the waiting one
    assert "refused: built-in account" in html and "playbook:x" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert html.count('name="csrf" value="tok"') >= 6  # every form carries the token


def test_read_only_viewer_gets_no_form() -> None:
    html = _render(Role.AUDITOR)
    main = html[html.index("<main") :]
    assert "<form" not in main and "/drafts/" not in main


def test_live_adapters_say_so_and_a_failed_run_can_be_run_again() -> None:
    assert "Exact action (dry-run)" in _render(Role.ANALYST)
    failed = {**SHOWN["containment"][1], "executed": False, "execution_error": "nac-http: POST answered 503"}
    ran = {
        **SHOWN["containment"][1],
        "id": "c4",
        "executed": True,
        "execution": {"actor": "dr-house", "output": "ok"},
    }
    shown = {**SHOWN, "containment": [SHOWN["containment"][0], failed, ran]}
    html = _render(Role.ANALYST, live=("nac-http",), shown=shown)
    assert "Live adapters here: nac-http" in html and "Exact action (runs live when approved)" in html
    assert "not executed: nac-http: POST answered 503" in html
    assert "executed live by dr-house" in html
    assert html.count("Run isolate host now") == 1  # only the one that did not run
    assert "Run isolate host now" not in _render(Role.AUDITOR, live=("nac-http",), shown=shown)
