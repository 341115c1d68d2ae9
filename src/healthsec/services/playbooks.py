"""The playbook engine: match incidents to playbooks and run their steps once each, recorded and resumable.

Every step runs inside the database transaction that records it as done, so a restart resumes after
the last recorded step and never repeats one. A failing step leaves the run ``failed`` with its error,
and the case gets the error and the list of remaining steps. A playbook that would (re)trigger itself
through case updates is stopped by loop protection (its name already in the chain, or the chain too
deep). Containment steps plan (dry-run) and wait for a person where the approval rule says so; an
approved plan runs only through an adapter the site turned live (``respond/executors.py``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from healthsec.model import Asset, Incident, Severity
from healthsec.model.common import stable_id
from healthsec.respond.containment import ContainmentConfig, approval_needed, plan
from healthsec.respond.playbook import IncidentContext, Playbook, parse_duration
from healthsec.services.cases import CaseService
from healthsec.services.containment import decide
from healthsec.store.cases import CaseTx

MAX_CHAIN = 3
ACTOR = "playbook"
_ZONE_CATEGORIES = {"ehr": "health", "imaging": "health", "devices": "clinical_device"}
_ROLE_CATEGORIES = {"pacs": "imaging", "pacs_viewer": "imaging", "modality": "imaging"}


class StepFailed(RuntimeError):
    """A step could not do its work; the message is shown on the case."""


def context_for(svc: CaseService, incident: Incident, assets: Sequence[Asset]) -> IncidentContext:
    """What the triggers look at: the incident plus its detectors, touched assets and data categories."""
    by_name = {a.name: a for a in assets}
    by_ip = {a.ip: a for a in assets if a.ip}
    touched = [x for e in incident.entities if (x := by_name.get(e.value) or by_ip.get(e.value)) is not None]
    detectors = set()
    for aid in incident.alert_ids:
        alert = svc.store.alerts.get(aid)
        if alert is not None:
            detectors.add(alert.detector)
    cats = {_ZONE_CATEGORIES[a.zone] for a in touched if a.zone in _ZONE_CATEGORIES}
    cats |= {_ROLE_CATEGORIES[a.role] for a in touched if a.role in _ROLE_CATEGORIES}
    kinds = {e.kind.value for e in incident.entities}
    if "patient" in kinds:
        cats.add("health")
    if "ae_title" in kinds:
        cats |= {"imaging", "health"}
    if "credential-access" in incident.tactics:
        cats.add("credentials")
    if any(d.startswith(("ehr-", "fhir-", "dicom-")) for d in detectors):
        cats.add("health")  # record and image access detectors: health data touched even when patients are
        # not named (alerts name no patient without the patient-pseudonym key)
    return IncidentContext(
        subject=incident.id,
        severity=incident.severity,
        tactics=frozenset(incident.tactics),
        techniques=frozenset(incident.techniques),
        asset_roles=frozenset(a.role for a in touched),
        zones=frozenset(a.zone for a in touched),
        detectors=frozenset(detectors),
        data_categories=frozenset(cats),
        entities=tuple((e.kind.value, e.value, e.role.value) for e in incident.entities),
        extra={"assets": {a.name: a for a in touched}, "all_assets": (by_name, by_ip)},
    )


def _external(value: str) -> bool:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return False
    return ip.is_global or str(ip).startswith(("198.51.100.", "203.0.113.", "192.0.2."))


#: built-in Windows principals: never an account to disable
BUILTIN_ACCOUNTS = frozenset({"system", "local service", "network service", "anonymous logon", "-"})


def targets(ctx: IncidentContext, selector: str) -> list[str]:
    """The entity values a containment step acts on, by selector (deduplicated, in incident order)."""
    picks: list[str] = []
    for kind, value, role in ctx.entities:
        ok = {
            "external_ip": kind == "ip" and _external(value),
            "actor_ip": kind == "ip" and role == "actor" and not _external(value),
            "actor_host": kind == "host" and role == "actor",
            "actor_account": kind == "user" and role == "actor",
            "target_account": kind == "user" and role == "target",
            "ae_title": kind == "ae_title" and role == "actor",
            "device": kind == "device",
            "hl7_sender": kind == "application" and role == "actor",
        }[selector]
        builtin = kind == "user" and value.rsplit("\\", 1)[-1].strip().lower() in BUILTIN_ACCOUNTS
        if ok and not builtin and value not in picks:
            picks.append(value)
    return picks


@dataclass
class PlaybookEngine:
    """Runs playbooks over incidents for one organisation."""

    cases: CaseService
    playbooks: Sequence[Playbook]
    containment: ContainmentConfig = field(default_factory=ContainmentConfig)
    keys: Any = None  # SharingKeys for share steps (else loaded from the environment when needed)
    max_chain: int = MAX_CHAIN
    handlers: dict[str, Callable[..., dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        defaults = {
            "open_case": self._open_case,
            "update_case": self._update_case,
            "add_task": self._add_task,
            "notify": self._notify,
            "enrich": self._enrich,
            "share": self._share,
            "contain": self._contain,
        }
        self.handlers = {**defaults, **self.handlers}

    @property
    def store(self) -> Any:
        return self.cases.store

    # --- entry points ------------------------------------------------------------------------------
    def on_incidents(self, incidents: Iterable[Incident]) -> list[dict[str, Any]]:
        """Run every matching ``on: incident`` playbook for each incident (a run already done is skipped)."""
        assets = self.store.assets.list()
        out = []
        for inc in incidents:
            ctx = context_for(self.cases, inc, assets)
            existing = self._existing_case(inc.id)
            if existing is not None:  # the incident grew since its case was opened
                self.cases.sync_incident(existing, inc, ACTOR)
            for book in self.playbooks:
                if book.trigger.event == "incident" and book.matches(ctx):
                    out.append(self.run(book, ctx))
        return out

    def run(self, book: Playbook, ctx: IncidentContext, chain: tuple[str, ...] = ()) -> dict[str, Any]:
        """Run (or resume) one playbook on one subject; returns the run record."""
        repo = self.cases.repo
        run_id = stable_id("run", self.store.org, book.name, book.version, ctx.subject, *chain)
        now = self.cases.clock()
        existing = repo.run(run_id)
        base = {
            "id": run_id,
            "playbook": book.name,
            "subject": ctx.subject,
            "started_at": now,
            "updated_at": now,
            "body": {"version": book.version, "chain": list(chain), "steps": len(book.steps)},
        }
        if existing is not None and existing["status"] in ("done", "stopped_loop"):
            return existing
        if book.name in chain or len(chain) >= self.max_chain:
            why = " -> ".join([*chain, book.name])
            err = f"loop protection: {why} (a playbook may not trigger itself, chain limit {self.max_chain})"
            with repo.tx() as tx:
                tx.upsert_run(
                    {**base, "status": "stopped_loop", "case_id": ctx.extra.get("case_id"), "error": err}
                )
                if ctx.extra.get("case_id"):
                    tx.timeline(
                        ctx.extra["case_id"], now, f"{ACTOR}:{book.name}", "playbook.loop_stopped", error=err
                    )
            return repo.run(run_id) or {}
        case_id = existing["case_id"] if existing else ctx.extra.get("case_id")
        with repo.tx() as tx:
            tx.upsert_run({**base, "status": "running", "case_id": case_id, "error": None})
        done = {s["idx"] for s in repo.steps(run_id) if s["status"] == "done"}
        for idx, step in enumerate(book.steps):
            if idx in done:
                continue  # resumed: this step already ran and was recorded with its effects
            params = step.model_dump()
            actor = f"{ACTOR}:{book.name}"
            try:
                with repo.tx() as tx:
                    output = self.handlers[step.kind](tx, book, ctx, params, run_id, idx, case_id)
                    case_id = output.pop("_case_id", case_id)
                    tx.record_step(
                        {
                            "run_id": run_id,
                            "idx": idx,
                            "kind": step.kind,
                            "status": "done",
                            "ts": self.cases.clock(),
                            "actor": actor,
                            "input": params,
                            "output": output,
                            "error": None,
                        }
                    )
                    tx.upsert_run({**base, "status": "running", "case_id": case_id, "error": None})
            except Exception as exc:  # a failing step must be visible on the case, never silently done
                self._failed(book, run_id, idx, params, case_id, exc, base)
                return repo.run(run_id) or {}
            if step.kind == "contain":  # `approval: auto` on an asset that is not patient-connected
                self._run_auto(output, actor)
            if step.kind == "update_case" and case_id and output.get("changed"):
                self._cascade(case_id, (*chain, book.name))  # only a real change can trigger others
        with repo.tx() as tx:
            tx.upsert_run(
                {
                    **base,
                    "status": "done",
                    "case_id": case_id,
                    "error": None,
                    "updated_at": self.cases.clock(),
                }
            )
        return repo.run(run_id) or {}

    def _run_auto(self, output: dict[str, Any], actor: str) -> None:
        """Run the requests the approval rule let through without a person, when their adapter is live.

        A failure is recorded on the request and the case (`cases approve` runs it again); the playbook
        goes on. Dry-run adapters: nothing to do, the plan stays recorded as approved."""
        for req in output.get("requests", []):
            if req["status"] != "approved":
                continue
            entry = self.cases.repo.entry(req["request"])
            if entry is None or not self.cases.config.live.is_live(entry["body"]["adapter"]):
                continue
            try:
                decide(self.cases, req["request"], actor, approve=True)
            except ValueError:
                continue  # recorded on the request and the case timeline by _run_live

    def _failed(
        self,
        book: Playbook,
        run_id: str,
        idx: int,
        params: dict[str, Any],
        case_id: str | None,
        exc: Exception,
        base: dict[str, Any],
    ) -> None:
        now = self.cases.clock()
        error = f"step {idx + 1} ({book.steps[idx].kind}) failed: {type(exc).__name__}: {exc}"
        remaining = [f"{i + 1}. {s.kind}" for i, s in enumerate(book.steps) if i >= idx]
        with self.cases.repo.tx() as tx:
            tx.record_step(
                {
                    "run_id": run_id,
                    "idx": idx,
                    "kind": book.steps[idx].kind,
                    "status": "failed",
                    "ts": now,
                    "actor": f"{ACTOR}:{book.name}",
                    "input": params,
                    "output": None,
                    "error": error,
                }
            )
            tx.upsert_run({**base, "status": "failed", "case_id": case_id, "error": error, "updated_at": now})
            if case_id:
                tx.timeline(
                    case_id, now, f"{ACTOR}:{book.name}", "playbook.failed", error=error, remaining=remaining
                )
                tx.add_entry(
                    stable_id("cmt", run_id, idx, now.isoformat()),
                    case_id,
                    "comment",
                    now,
                    f"{ACTOR}:{book.name}",
                    {"text": f"playbook {book.name}: {error}; not done yet: {', '.join(remaining)}"},
                )

    def _cascade(self, case_id: str, chain: tuple[str, ...]) -> None:
        """Re-evaluate ``on: case_updated`` playbooks after a case changed (bounded by loop protection)."""
        case = self.cases.repo.get(case_id)
        if case is None:
            return
        ctx = IncidentContext(
            subject=case_id,
            severity=Severity(case["severity"]),
            data_categories=frozenset(case["body"].get("data_categories", [])),
            extra={"case_id": case_id},
        )
        for book in self.playbooks:
            if book.trigger.event == "case_updated" and book.matches(ctx):
                self.run(book, ctx, chain)

    # --- step handlers (called inside the transaction that records the step) -------------------------
    def _need_case(self, case_id: str | None) -> str:
        if not case_id:
            raise StepFailed("no case: the playbook has no open_case step before this one")
        return case_id

    def _open_case(
        self,
        tx: CaseTx,
        book: Playbook,
        ctx: IncidentContext,
        p: dict[str, Any],
        run_id: str,
        idx: int,
        case_id: str | None,
    ) -> dict[str, Any]:
        cid = case_id or self._existing_case(ctx.subject) or stable_id("case", self.store.org, ctx.subject)
        cats = sorted(set(p["data_categories"]) | set(ctx.data_categories))
        _, new = self.cases.open(
            [ctx.subject],
            f"{ACTOR}:{book.name}",
            title=p["title"],
            case_id=cid,
            data_categories=cats,
            significant=p["significant"],
            start_clocks=p["start_clocks"],
            tx=tx,
        )
        return {"case": cid, "opened": new, "_case_id": cid}

    def _existing_case(self, incident_id: str) -> str | None:
        for c in self.cases.repo.list(limit=1000):
            if incident_id in c["body"]["incidents"] and c["status"] != "closed":
                return str(c["id"])
        return None

    def _update_case(
        self,
        tx: CaseTx,
        book: Playbook,
        ctx: IncidentContext,
        p: dict[str, Any],
        run_id: str,
        idx: int,
        case_id: str | None,
    ) -> dict[str, Any]:
        cid = self._need_case(case_id)
        case = self.cases.require(cid)
        values: dict[str, Any] = {}
        if p["status"] and case["status"] != "closed":
            values["status"] = p["status"]
        if p["severity"]:
            values["severity"] = max(case["severity"], int(Severity.parse(p["severity"])))
        now = self.cases.clock()
        if values:
            tx.update_case(cid, updated_at=now, **values)
            tx.timeline(cid, now, f"{ACTOR}:{book.name}", "case.updated", **values)
        return {"case": cid, "changed": values}

    def _add_task(
        self,
        tx: CaseTx,
        book: Playbook,
        ctx: IncidentContext,
        p: dict[str, Any],
        run_id: str,
        idx: int,
        case_id: str | None,
    ) -> dict[str, Any]:
        cid = self._need_case(case_id)
        now = self.cases.clock()
        due = now + parse_duration(p["due_in"]) if p["due_in"] else None
        tid = stable_id("task", run_id, idx)
        body = {
            "title": p["title"],
            "owner": p["owner"],
            "due": None if due is None else due.isoformat(),
            "status": "open",
        }
        tx.add_entry(tid, cid, "task", now, f"{ACTOR}:{book.name}", body)
        tx.timeline(cid, now, f"{ACTOR}:{book.name}", "task.added", entry=tid, title=p["title"])
        return {"task": tid, "due": body["due"]}

    def _notify(
        self,
        tx: CaseTx,
        book: Playbook,
        ctx: IncidentContext,
        p: dict[str, Any],
        run_id: str,
        idx: int,
        case_id: str | None,
    ) -> dict[str, Any]:
        cid = self._need_case(case_id)
        case = self.cases.require(cid)  # committed by the open_case step before this one
        self.cases.notify(tx, case, p["event"], run_id, self.cases.clock())
        return {"event": p["event"], "channels": list(self.cases.config.channels)}

    def _enrich(
        self,
        tx: CaseTx,
        book: Playbook,
        ctx: IncidentContext,
        p: dict[str, Any],
        run_id: str,
        idx: int,
        case_id: str | None,
    ) -> dict[str, Any]:
        from healthsec.services.enrich import enrich

        cid = self._need_case(case_id)
        lines = enrich(self.store, p["source"], ctx)
        now = self.cases.clock()
        tx.add_entry(
            stable_id("cmt", run_id, idx),
            cid,
            "comment",
            now,
            f"{ACTOR}:{book.name}",
            {"text": "\n".join(lines), "enrichment": p["source"]},
        )
        return {"source": p["source"], "lines": len(lines)}

    def _share(
        self,
        tx: CaseTx,
        book: Playbook,
        ctx: IncidentContext,
        p: dict[str, Any],
        run_id: str,
        idx: int,
        case_id: str | None,
    ) -> dict[str, Any]:
        from healthsec.services.enrich import share_incident
        from healthsec.share.keys import load_keys

        self._need_case(case_id)
        keys = self.keys or load_keys(self.cases.config.sharing_key_file)  # settings' file, else the env
        return share_incident(self.store, ctx.subject, p["partner"], p["tlp"], keys)

    def _contain(
        self,
        tx: CaseTx,
        book: Playbook,
        ctx: IncidentContext,
        p: dict[str, Any],
        run_id: str,
        idx: int,
        case_id: str | None,
    ) -> dict[str, Any]:
        cid = self._need_case(case_id)
        now = self.cases.clock()
        by_name, by_ip = ctx.extra.get("all_assets", ({}, {}))
        requests = []
        for value in targets(ctx, p["target"]):
            try:
                the_plan = plan(p["action"], value, self.containment)
            except ValueError as exc:  # refused for this target only; shown on the case, the others go on
                rid = stable_id("ctn", run_id, idx, value)
                body = {"action": p["action"], "target": value, "status": "refused", "reason": str(exc)}
                tx.add_entry(rid, cid, "containment", now, f"{ACTOR}:{book.name}", body)
                tx.timeline(
                    cid, now, f"{ACTOR}:{book.name}", "containment.refused", entry=rid, reason=str(exc)
                )
                requests.append({"request": rid, "target": value, "status": "refused"})
                continue
            asset = by_name.get(value) or by_ip.get(value)
            needed, reason = approval_needed(asset, p["approval"])
            rid = stable_id("ctn", run_id, idx, value)
            body = {
                **the_plan.as_dict(),
                "asset": None if asset is None else asset.name,
                "requires_approval": needed,
                "approval_reason": reason,
                "status": "awaiting_approval" if needed else "approved",
                "ready_at": now.isoformat(),
                "decided_by": None if needed else f"{ACTOR}:{book.name}",
                "executed": False,  # a live adapter sets it when it ran the plan
            }
            tx.add_entry(rid, cid, "containment", now, f"{ACTOR}:{book.name}", body)
            tx.timeline(
                cid,
                now,
                f"{ACTOR}:{book.name}",
                "containment.requested",
                entry=rid,
                containment=p["action"],
                target=value,
                status=body["status"],
            )
            requests.append({"request": rid, "target": value, "status": body["status"]})
        if not requests:
            return {"requests": [], "note": f"no {p['target']} in the incident"}
        return {"requests": requests}


def on_incidents(
    store: Any, incidents: Iterable[Incident], settings: Any = None, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The pipeline hook: after incidents are upserted, run the matching playbooks over them.

    ``now`` is the batch's event time when replaying (the case opens when the incident exists);
    without it the wall clock is used. Settings give jurisdictions, channels and extra playbooks.
    """
    from healthsec.config import load_settings
    from healthsec.respond.playbook import load_all
    from healthsec.services.cases import ResponseConfig

    settings = settings or load_settings()
    incidents = list(incidents)
    if settings.outputs:  # SIEM destinations: queued in the outbox before any playbook runs
        from healthsec.services.outputs import on_incidents as queue_outputs

        queue_outputs(store, incidents, settings)
    svc = CaseService(store, ResponseConfig.from_settings(settings, store.org))
    if now is not None:
        svc.clock = lambda: now
    engine = PlaybookEngine(
        svc, load_all(settings.playbook_dirs), containment=ContainmentConfig.from_settings(settings)
    )
    return engine.on_incidents(incidents)
