"""Case use cases: open from incidents, tasks, observables, comments, attachments, status, close; each change
is stored with its timeline line and its notifications in one transaction (the outbox)."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from healthsec.model import EntityKind, Incident, Severity
from healthsec.model.common import stable_id
from healthsec.respond.executors import LiveConfig
from healthsec.store import Store
from healthsec.store.cases import CaseRepository, CaseTx, cases

STATUSES = ("open", "investigating", "contained", "closed")
OBSERVABLE_KINDS = ("host", "account", "ip", "hash", "patient", "ae_title", "device", "url")
_ENTITY_OBSERVABLE = {
    EntityKind.HOST: "host",
    EntityKind.IP: "ip",
    EntityKind.USER: "account",
    EntityKind.PATIENT: "patient",
    EntityKind.AE_TITLE: "ae_title",
    EntityKind.DEVICE: "device",
}


class CaseError(ValueError):
    """A case operation was refused; the message says which case and why."""


@dataclass(frozen=True)
class ResponseConfig:
    """What the response side needs from the settings of one organisation."""

    console_url: str | None = None
    jurisdictions: tuple[str, ...] = ()
    contact: str | None = None
    tz: str | None = None
    channels: tuple[str, ...] = ()  # outbox channels for case events: webhook, email, apprise
    max_attempts: int = 8
    live: LiveConfig = field(default_factory=LiveConfig)  # containment adapters that act (default: none)
    sharing_key_file: Path | None = None  # playbook `share` steps (else $HEALTHSEC_SHARING_KEY)

    @classmethod
    def from_settings(cls, settings: Any, org: str | None = None) -> ResponseConfig:
        org = org or settings.org
        channels = tuple(
            name
            for name, on in (
                ("webhook", settings.notify_webhook_url),
                ("email", settings.notify_smtp_host and settings.notify_email_to),
                ("apprise", settings.notify_apprise_urls),
            )
            if on
        )
        juris = settings.org_jurisdictions.get(org, settings.jurisdictions if org == settings.org else ())
        return cls(
            console_url=settings.console_url,
            jurisdictions=tuple(juris),
            contact=settings.breach_contact,
            tz=settings.breach_tz,
            channels=channels,
            max_attempts=settings.notify_max_attempts,
            # live adapters act for the server's own organisation only (its firewall, directory, NAC)
            live=LiveConfig.from_settings(settings) if org == settings.org else LiveConfig(),
            sharing_key_file=settings.sharing_secret_file,
        )


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(UTC).isoformat()


@dataclass
class CaseService:
    """Every case use case, written once; the CLI, the API and the playbooks call these."""

    store: Store
    config: ResponseConfig = field(default_factory=ResponseConfig)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    @property
    def repo(self) -> CaseRepository:
        return cases(self.store)

    # --- helpers -----------------------------------------------------------------------------------
    def require(self, case_id: str) -> dict[str, Any]:
        case = self.repo.get(case_id)
        if case is None:
            raise CaseError(f"no case {case_id} in organisation {self.store.org}")
        return case

    def _open_case(self, case_id: str) -> dict[str, Any]:
        case = self.require(case_id)
        if case["status"] == "closed":
            raise CaseError(f"case {case_id} is closed; reopen it first")
        return case

    def patient_token(self, value: str, tx: CaseTx | None = None) -> str:
        """A keyed pseudonym (per-organisation random key kept in the database) for a patient id."""
        from sqlalchemy import select

        from healthsec.store import schema_cases as sc
        from healthsec.store.cases import _insert_new

        t = sc.case_keys

        def key_of(conn: Any) -> str:
            _insert_new(conn, t, {"org": self.store.org, "key_hex": secrets.token_hex(32)}, ("org",))
            return str(conn.execute(select(t.c.key_hex).where(t.c.org == self.store.org)).scalar_one())

        if tx is not None:
            key = key_of(tx.conn)
        else:
            with self.store.engine.begin() as conn:
                key = key_of(conn)
        digest = hmac.new(bytes.fromhex(key), value.encode(), "sha256").hexdigest()
        return f"pt-{digest[:16]}"

    def notify(self, tx: CaseTx, case: dict[str, Any], event: str, key: str, ts: datetime) -> None:
        """Queue one message per configured channel; no PHI: ids, severity, status, a console link."""
        link = (
            f"{self.config.console_url.rstrip('/')}/cases/{case['id']}" if self.config.console_url else None
        )
        body = {
            "event": event,
            "org": self.store.org,
            "case": case["id"],
            "severity": Severity(case["severity"]).label,
            "status": case["status"],
            "at": _iso(ts),
            "link": link,
            "subject": f"healthsec: {event} - case {case['id']} ({Severity(case['severity']).label})",
        }
        for channel in self.config.channels:
            tx.enqueue(stable_id("msg", self.store.org, channel, case["id"], event, key), channel, ts, body)

    def _change(
        self,
        case_id: str,
        actor: str,
        action: str,
        *,
        notify: bool = False,
        key: str = "",
        detail: dict[str, Any] | None = None,
        apply: Callable[[CaseTx, dict[str, Any], datetime], dict[str, Any] | None] | None = None,
    ) -> dict[str, Any]:
        case = self.require(case_id)
        now = self.clock()
        with self.repo.tx() as tx:
            values = apply(tx, case, now) if apply else None
            if values:
                tx.update_case(case_id, updated_at=now, **values)
                case = {**case, **values}
            else:
                tx.update_case(case_id, updated_at=now)
            tx.timeline(case_id, now, actor, action, **(detail or {}))
            if notify:
                self.notify(tx, case, action, key or str(now.timestamp()), now)
        return case

    # --- opening -----------------------------------------------------------------------------------
    def open(
        self,
        incident_ids: Sequence[str],
        actor: str,
        *,
        title: str | None = None,
        severity: Severity | None = None,
        case_id: str | None = None,
        data_categories: Iterable[str] = (),
        significant: bool = False,
        start_clocks: bool = False,
        tx: CaseTx | None = None,
    ) -> tuple[str, bool]:
        """Open a case from incidents (idempotent when ``case_id`` is given); returns (id, newly opened)."""
        incidents = self._incidents(incident_ids)
        now = self.clock()
        cid = case_id or stable_id("case", self.store.org, *sorted(incident_ids), now.isoformat())
        sev = severity if severity is not None else max((i.severity for i in incidents), default=Severity.LOW)
        body = {
            "incidents": sorted({i.id for i in incidents}),
            "data_categories": sorted(set(data_categories)),
            "significant": significant,
            "jurisdictions": list(self.config.jurisdictions),
            "resolution": None,
            "lessons": None,
            "opened_by": actor,
        }
        row = {
            "id": cid,
            "title": title or (incidents[0].title if incidents else "case"),
            "status": "open",
            "severity": int(sev),
            "opened_at": now,
            "updated_at": now,
            "closed_at": None,
            "aware_at": None,
            "body": body,
        }

        def write(t: CaseTx) -> bool:
            if not t.insert_case(row):
                return False
            t.timeline(cid, now, actor, "case.opened", incidents=body["incidents"])
            self._observables(t, cid, incidents, actor, now)
            self.notify(t, row, "case.opened", "", now)
            if start_clocks:
                from healthsec.services.breach import start_in

                start_in(self, t, row, actor, now)
            return True

        if tx is not None:
            return cid, write(tx)
        with self.repo.tx() as t:
            return cid, write(t)

    def _incidents(self, incident_ids: Sequence[str]) -> list[Incident]:
        found = []
        for iid in incident_ids:
            inc = self.store.incidents.get(iid)
            if inc is None:
                raise CaseError(f"no incident {iid} in organisation {self.store.org}")
            found.append(inc)
        return found

    def _observables(
        self, tx: CaseTx, case_id: str, incidents: Iterable[Incident], actor: str, now: datetime
    ) -> int:
        added = 0
        for inc in incidents:
            for e in inc.entities:
                kind = _ENTITY_OBSERVABLE.get(e.kind)
                if kind is None:
                    continue
                value = self.patient_token(e.value, tx) if kind == "patient" else e.value
                oid = stable_id("obs", case_id, kind, value)
                added += tx.add_entry(
                    oid, case_id, "observable", now, actor, {"kind": kind, "value": value, "role": e.role}
                )
        return added

    def sync_incident(self, case_id: str, incident: Incident, actor: str) -> bool:
        """An incident of the case grew (new alerts, entities, severity): bring its observables and the
        case severity along; a timeline line only when something changed. Closed cases stay as closed."""
        case = self.require(case_id)
        if case["status"] == "closed":
            return False
        now = self.clock()
        with self.repo.tx() as tx:
            added = self._observables(tx, case_id, [incident], actor, now)
            severity = max(case["severity"], int(incident.severity))
            if not added and severity == case["severity"]:
                return False
            tx.update_case(case_id, severity=severity, updated_at=now)
            tx.timeline(case_id, now, actor, "case.incident_grew", incident=incident.id, observables=added)
            if severity > case["severity"]:
                self.notify(
                    tx, {**case, "severity": severity}, "case.severity", Severity(severity).label, now
                )
        return True

    def add_incidents(self, case_id: str, incident_ids: Sequence[str], actor: str) -> dict[str, Any]:
        self._open_case(case_id)
        incidents = self._incidents(incident_ids)

        def apply(tx: CaseTx, case: dict[str, Any], now: datetime) -> dict[str, Any]:
            body = dict(case["body"])
            body["incidents"] = sorted(set(body["incidents"]) | {i.id for i in incidents})
            self._observables(tx, case_id, incidents, actor, now)
            sev = max([case["severity"], *(int(i.severity) for i in incidents)])
            return {"body": body, "severity": sev}

        ids = sorted(i.id for i in incidents)
        return self._change(case_id, actor, "case.incidents_added", detail={"incidents": ids}, apply=apply)

    # --- entries -----------------------------------------------------------------------------------
    def _entry(
        self, case_id: str, kind: str, actor: str, body: dict[str, Any], entry_id: str | None = None
    ) -> str:
        self._open_case(case_id)
        now = self.clock()
        eid = entry_id or stable_id(kind[:4], case_id, now.isoformat(), secrets.token_hex(4))

        def apply(tx: CaseTx, case: dict[str, Any], ts: datetime) -> None:
            tx.add_entry(eid, case_id, kind, ts, actor, body)

        self._change(case_id, actor, f"{kind}.added", detail={"entry": eid, **body}, apply=apply)
        return eid

    def add_task(
        self, case_id: str, title: str, actor: str, *, owner: str | None = None, due: datetime | None = None
    ) -> str:
        if not title.strip():
            raise CaseError(f"case {case_id}: a task needs a title")
        return self._entry(
            case_id, "task", actor, {"title": title, "owner": owner, "due": _iso(due), "status": "open"}
        )

    def set_task(self, task_id: str, status: str, actor: str) -> None:
        task = self.repo.entry(task_id)
        if task is None or task["kind"] != "task":
            raise CaseError(f"no task {task_id}")
        if status not in ("open", "done", "cancelled"):
            raise CaseError(f"task {task_id}: status {status!r} is not open, done or cancelled")

        def apply(tx: CaseTx, case: dict[str, Any], now: datetime) -> None:
            tx.update_entry(task_id, {**task["body"], "status": status})

        self._change(
            task["case_id"], actor, "task.updated", detail={"entry": task_id, "status": status}, apply=apply
        )

    def add_observable(self, case_id: str, kind: str, value: str, actor: str) -> str:
        if kind not in OBSERVABLE_KINDS:
            raise CaseError(
                f"case {case_id}: observable kind {kind!r} is not one of {', '.join(OBSERVABLE_KINDS)}"
            )
        if not value.strip():
            raise CaseError(f"case {case_id}: observable {kind} has no value")
        value = self.patient_token(value) if kind == "patient" else value.strip()
        return self._entry(
            case_id,
            "observable",
            actor,
            {"kind": kind, "value": value},
            stable_id("obs", case_id, kind, value),
        )

    def comment(self, case_id: str, text: str, actor: str) -> str:
        if not text.strip():
            raise CaseError(f"case {case_id}: empty comment")
        return self._entry(case_id, "comment", actor, {"text": text})

    def attach(self, case_id: str, name: str, ref: str, actor: str) -> str:
        """An attachment by reference (a URL or a path in the evidence store), never the file itself."""
        if not name.strip() or not ref.strip():
            raise CaseError(f"case {case_id}: an attachment needs a name and a reference")
        return self._entry(case_id, "attachment", actor, {"name": name, "ref": ref})

    # --- status ------------------------------------------------------------------------------------
    def set_status(self, case_id: str, status: str, actor: str) -> dict[str, Any]:
        if status not in STATUSES:
            raise CaseError(f"case {case_id}: status {status!r} is not one of {', '.join(STATUSES)}")
        if status == "closed":
            raise CaseError(f"case {case_id}: close it with a resolution and a lessons-learnt note")
        case = self.require(case_id)
        reopen = case["status"] == "closed"
        return self._change(
            case_id,
            actor,
            "case.reopened" if reopen else "case.status",
            notify=True,
            detail={"from": case["status"], "to": status},
            apply=lambda tx, c, now: {"status": status, "closed_at": None},
        )

    def set_severity(self, case_id: str, severity: Severity, actor: str) -> dict[str, Any]:
        case = self._open_case(case_id)
        return self._change(
            case_id,
            actor,
            "case.severity",
            notify=int(severity) > case["severity"],
            key=severity.label,
            detail={"from": Severity(case["severity"]).label, "to": severity.label},
            apply=lambda tx, c, now: {"severity": int(severity)},
        )

    def close(self, case_id: str, resolution: str, lessons: str, actor: str) -> dict[str, Any]:
        case = self._open_case(case_id)
        missing = [
            n for n, v in (("resolution", resolution), ("lessons-learnt note", lessons)) if not v.strip()
        ]
        if missing:
            raise CaseError(f"case {case_id} not closed: it needs a {' and a '.join(missing)}")

        def apply(tx: CaseTx, c: dict[str, Any], now: datetime) -> dict[str, Any]:
            body = {**c["body"], "resolution": resolution, "lessons": lessons}
            return {"status": "closed", "closed_at": now, "body": body}

        del case
        return self._change(case_id, actor, "case.closed", notify=True, apply=apply)

    # --- reading -----------------------------------------------------------------------------------
    def show(self, case_id: str) -> dict[str, Any]:
        """The case with its entries by kind, its playbook runs, its timeline and its clocks."""
        from healthsec.services.breach import clock_rows

        case = self.require(case_id)
        entries = self.repo.entries(case_id)
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for e in entries:
            by_kind.setdefault(e["kind"], []).append(
                {"id": e["id"], "ts": _iso(e["ts"]), "actor": e["actor"], **e["body"]}
            )
        runs = []
        for r in self.repo.runs(case_id=case_id):
            steps = [
                {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in s.items() if k != "org"}
                for s in self.repo.steps(r["id"])
            ]
            runs.append(
                {
                    "id": r["id"],
                    "playbook": r["playbook"],
                    "status": r["status"],
                    "error": r["error"],
                    "steps": steps,
                }
            )
        return {
            **{
                k: (_iso(v) if isinstance(v, datetime) else v)
                for k, v in case.items()
                if k not in ("org", "body")
            },
            "severity": Severity(case["severity"]).label,
            **case["body"],
            "tasks": by_kind.get("task", []),
            "observables": by_kind.get("observable", []),
            "comments": by_kind.get("comment", []),
            "attachments": by_kind.get("attachment", []),
            "containment": by_kind.get("containment", []),
            "playbook_runs": runs,
            "clocks": clock_rows(self, case_id),
            "timeline": [
                {"ts": _iso(t["ts"]), "actor": t["actor"], "action": t["action"], "detail": t["detail"]}
                for t in self.repo.timeline(case_id)
            ],
        }

    def entry_of(self, case_id: str, entry_id: str, kind: str) -> dict[str, Any]:
        """An entry (task, containment request, ...) of this case; CaseError "no ..." for any other id."""
        entry = self.repo.entry(entry_id)
        if entry is None or entry["kind"] != kind or entry["case_id"] != case_id:
            raise CaseError(f"no {kind} {entry_id} in case {case_id}")
        return entry

    def awaiting_approval(self) -> dict[str, int]:
        """Per case, how many containment requests wait for a person's decision."""
        out: dict[str, int] = {}
        for e in self.repo.entries_of_kind("containment"):
            if e["body"].get("status") == "awaiting_approval":
                out[e["case_id"]] = out.get(e["case_id"], 0) + 1
        return out

    def list(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return [
            {
                "id": c["id"],
                "title": c["title"],
                "status": c["status"],
                "severity": Severity(c["severity"]).label,
                "opened_at": _iso(c["opened_at"]),
                "incidents": c["body"]["incidents"],
            }
            for c in self.repo.list(status=status, limit=limit)
        ]
