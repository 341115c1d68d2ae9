"""Containment requests: a person's decision, the live run of an approved plan, and its rollback.

The plans are made by playbook ``contain`` steps (``respond/containment.py``: dry-run, exact); here a
person approves or rejects one, an approved plan runs through its adapter when the site turned that
adapter live (``containment_live``; ``respond/executors.py``), and a rollback undoes it the same way.
Every run is recorded on the request with input, output, actor and time, and on the case timeline.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from healthsec.respond.executors import ExecutionFailed, execute
from healthsec.services.cases import CaseService

DRY_RUN = "dry-run: nothing was changed; a person runs the commands below (or a live adapter is configured)"


def _containment(svc: CaseService, request_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    entry = svc.repo.entry(request_id)
    if entry is None or entry["kind"] != "containment":
        raise ValueError(f"no containment request {request_id}")
    return entry, dict(entry["body"])


def _run_live(
    svc: CaseService, entry: dict[str, Any], body: dict[str, Any], actor: str, *, undo: bool = False
) -> dict[str, Any]:
    """Run the plan (or its rollback) through its live adapter; record input, output, actor and time.

    A failure is recorded on the request (``execution_error``) and the case timeline, then raised: the
    request stays ``approved`` (or, for a rollback, executed) so running it again retries."""
    request_id, case_id = entry["id"], entry["case_id"]
    key = "rollback_execution" if undo else "execution"
    now = svc.clock()
    try:
        record = execute(body, svc.config.live, request_id, undo=undo)
    except ExecutionFailed as exc:
        body[f"{key}_error"] = str(exc)
        with svc.repo.tx() as tx:
            tx.update_entry(request_id, body)
            tx.timeline(
                case_id, now, actor, "containment.failed", entry=request_id, error=str(exc), undo=undo
            )
        raise ValueError(
            f"containment request {request_id} not {'undone' if undo else 'executed'}: {exc}"
        ) from None
    body.pop(f"{key}_error", None)
    body[key] = {**record, "adapter": body["adapter"], "actor": actor, "at": now.astimezone(UTC).isoformat()}
    if undo:
        body.update(status="rolled_back", executed=False)
    else:
        body.update(executed=True, dry_run=False, result=f"executed live through {body['adapter']}")
    event = "containment.rolled_back" if undo else "containment.executed"
    with svc.repo.tx() as tx:
        tx.update_entry(request_id, body)
        tx.timeline(case_id, now, actor, event, entry=request_id, adapter=body["adapter"], live=True)
    return body


def rollback(svc: CaseService, request_id: str, actor: str, reason: str) -> dict[str, Any]:
    """Undo an approved containment: through its live adapter when it ran live, else recorded (dry-run)."""
    entry, body = _containment(svc, request_id)
    if body["status"] != "approved":
        raise ValueError(
            f"containment request {request_id} is {body['status']}; only an approved one is undone"
        )
    if not body.get("rollback"):
        raise ValueError(f"containment request {request_id} has no rollback")
    if not reason.strip():
        raise ValueError(f"containment request {request_id}: a rollback needs a reason")
    now = svc.clock()
    body.update(rolled_back_by=actor, rolled_back_at=now.isoformat(), rollback_reason=reason)
    if body.get("executed"):  # it changed something: the same adapter undoes it
        return _run_live(svc, entry, body, actor, undo=True)
    body.update(status="rolled_back")
    with svc.repo.tx() as tx:
        tx.update_entry(request_id, body)
        tx.timeline(entry["case_id"], now, actor, "containment.rolled_back", entry=request_id)
    return body


def decide(
    svc: CaseService, request_id: str, actor: str, *, approve: bool, reason: str = ""
) -> dict[str, Any]:
    """A person approves or rejects a containment request.

    Dry-run (the default) records the decision and the exact plan; nothing on the network changes. With
    the request's adapter in ``containment_live`` the approved plan runs through it (recorded with input,
    output and actor). Approving again is idempotent: a plan already run is not run twice, one approved
    but not yet run (a failure, or a playbook's ``approval: auto``) runs now; a dry-run approval stands
    (a second one is refused)."""
    entry, body = _containment(svc, request_id)
    live = svc.config.live.is_live(body["adapter"]) if "adapter" in body else False
    if approve and body["status"] == "approved" and (body.get("executed") or live):
        return body if body.get("executed") else _run_live(svc, entry, body, actor)
    if body["status"] not in ("awaiting_approval",):
        raise ValueError(f"containment request {request_id} is {body['status']}, not awaiting approval")
    if not approve and not reason.strip():
        raise ValueError(f"containment request {request_id}: a rejection needs a reason")
    now = svc.clock()
    body.update(
        status="approved" if approve else "rejected",
        decided_by=actor,
        decided_at=now.astimezone(UTC).isoformat(),
        reason=reason or None,
        executed=False,
        result=(f"approved; running through {body['adapter']}" if live else DRY_RUN) if approve else None,
    )
    with svc.repo.tx() as tx:
        tx.update_entry(request_id, body)
        tx.timeline(
            entry["case_id"],
            now,
            actor,
            "containment.approved" if approve else "containment.rejected",
            entry=request_id,
        )
    return _run_live(svc, entry, body, actor) if approve and live else body
