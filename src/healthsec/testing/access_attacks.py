"""Documented insider-attack generators for EHR access analytics, over the real Synthea patients.

Synthea publishes patients, practitioners and encounters but no access logs, and no public data set
labels EHR insider attacks. So the benign carrier is built from the real care relationships (each
practitioner reads the records of the patients they met, in working hours, at a seeded random pace) and
each attack below is inserted into that carrier. Every attack is named and carries the ATT&CK technique
it stands for. The access detector's default thresholds were chosen knowing these generators: figures
measured on them are a regression check, not an independent detection rate.

Run ``python -m healthsec.testing.access_attacks OUT.ndjson --bundle DIR`` to write benign + attack
traffic as FHIR R4 AuditEvents (a demo input for ``healthsec scan fhir``).
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from healthsec.model import RecordAccess, stable_id
from healthsec.model.care import CareContext
from healthsec.model.events import AccessAction

SOURCE = "sim-ehr"
RESOURCE_TYPES = (
    "Observation",
    "Encounter",
    "Condition",
    "MedicationRequest",
    "DocumentReference",
    "Procedure",
)
DEFAULT_ROLE = "General Practice Physician"
EPOCH = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday


@dataclass(frozen=True)
class AttackCase:
    """One inserted attack: its name, ATT&CK technique, what it does, the events, and who did it."""

    name: str
    technique: str
    description: str
    attacker: str
    events: list[RecordAccess]
    expected_rule: str
    context: CareContext
    notes: dict[str, str] = field(default_factory=dict)


def _access(
    seq: str,
    ts: datetime,
    user: str,
    patient: str | None,
    *,
    role: str | None,
    action: AccessAction = "read",
    resource_type: str | None = None,
    records: int = 1,
    workstation: str | None = None,
) -> RecordAccess:
    return RecordAccess(
        id=stable_id("acc", SOURCE, seq),
        ts=ts,
        source=SOURCE,
        user=user,
        role=role,
        patient_id=patient,
        action=action,
        resource_type=resource_type,
        records=records,
        workstation=workstation,
        outcome="success",
    )


def clinicians(ctx: CareContext) -> list[str]:
    return sorted(u for u, patients in ctx.care.items() if patients and u.startswith("Practitioner/"))


def benign_accesses(
    ctx: CareContext, *, days: int, start: datetime = EPOCH, seed: int = 0
) -> list[RecordAccess]:
    """Each clinician reads their own patients' records on weekdays, 08:00-17:59 UTC, at a seeded pace."""
    rng = random.Random(seed)
    out: list[RecordAccess] = []
    for ui, user in enumerate(clinicians(ctx)):
        mine = sorted(ctx.care[user])
        role = ctx.role_of(user, DEFAULT_ROLE)
        pace = rng.uniform(2, 8)  # this clinician's usual records per active hour
        for day in range(days):
            when = start + timedelta(days=day)
            if when.weekday() >= 5:
                continue
            for hour in range(8, 18):
                if rng.random() > 0.45:
                    continue
                for k in range(max(1, round(rng.gauss(pace, pace / 3)))):
                    ts = when + timedelta(hours=hour, seconds=rng.randrange(3600))
                    out.append(
                        _access(
                            f"benign/{seed}/{user}/{day}/{hour}/{k}",
                            ts,
                            user,
                            rng.choice(mine),
                            role=role,
                            action="search" if rng.random() < 0.2 else "read",
                            resource_type=rng.choice(RESOURCE_TYPES),
                            workstation=f"ws-{ui:03d}",
                        )
                    )
    out.sort(key=lambda e: (e.ts, e.id))
    return out


VARIATIONS = ("late-shift", "busy-day", "cross-coverage")


def benign_variations(
    ctx: CareContext, *, days: int, start: datetime = EPOCH, seed: int = 0, rate: float = 0.05
) -> dict[str, list[RecordAccess]]:
    """Legitimate behaviour that the clean carrier lacks, by kind (each clinician, each weekday, with
    probability ``rate``): ``late-shift`` (own patients, 18:00-22:59, a usual pace), ``busy-day`` (10-25
    extra reads of own patients in one working hour), ``cross-coverage`` (1-2 reads of a colleague's patient
    while covering — indistinguishable from snooping for a directory built from encounters alone)."""
    rng = random.Random(10_000 + seed)
    users = clinicians(ctx)
    out: dict[str, list[RecordAccess]] = {kind: [] for kind in VARIATIONS}
    for ui, user in enumerate(users):
        mine = sorted(ctx.care[user])
        role = ctx.role_of(user, DEFAULT_ROLE)
        others = sorted({p for u in users if u != user for p in ctx.care[u]} - set(mine))
        for day in range(days):
            when = start + timedelta(days=day)
            if when.weekday() >= 5:
                continue
            for kind in VARIATIONS:
                if rng.random() >= rate:
                    continue
                if kind == "late-shift":
                    stamps = [
                        when + timedelta(hours=h, seconds=rng.randrange(3600))
                        for h in range(18, 23)
                        for _ in range(rng.randint(2, 8))
                    ]
                    patients = [rng.choice(mine) for _ in stamps]
                elif kind == "busy-day":
                    hour = rng.randrange(8, 18)
                    stamps = [
                        when + timedelta(hours=hour, seconds=rng.randrange(3600))
                        for _ in range(rng.randint(10, 25))
                    ]
                    patients = [rng.choice(mine) for _ in stamps]
                else:
                    if not others:
                        continue
                    covered = rng.choice(others)
                    stamps = [
                        when + timedelta(hours=rng.randrange(8, 18), seconds=rng.randrange(3600))
                        for _ in range(rng.randint(1, 2))
                    ]
                    patients = [covered for _ in stamps]
                for k, (ts, pid) in enumerate(zip(stamps, patients, strict=True)):
                    out[kind].append(
                        _access(
                            f"variation/{kind}/{seed}/{user}/{day}/{k}",
                            ts,
                            user,
                            pid,
                            role=role,
                            resource_type=rng.choice(RESOURCE_TYPES),
                            workstation=f"ws-{ui:03d}",
                        )
                    )
    return out


def _pick_unrelated(
    ctx: CareContext, user: str, patients: Sequence[str], n: int, rng: random.Random
) -> list[str]:
    pool = [p for p in patients if not ctx.has_relationship(user, p)]
    return rng.sample(pool, min(n, len(pool)))


def attack_cases(
    ctx: CareContext, patients: Sequence[str], *, day: datetime, seed: int = 0
) -> list[AttackCase]:
    """The insider attacks, each on ``day`` (UTC), by a different clinician of the directory."""
    rng = random.Random(seed)
    users = clinicians(ctx)
    rng.shuffle(users)
    cases: list[AttackCase] = []

    def role(u: str) -> str | None:
        return ctx.role_of(u, DEFAULT_ROLE)

    # 1. Curiosity browsing: six patients the user never met (T1213 Data from Information Repositories).
    u = users[0]
    victims = _pick_unrelated(ctx, u, patients, 6, rng)
    ev = [
        _access(
            f"atk/snoop/{i}",
            day + timedelta(hours=10, minutes=7 * i),
            u,
            p,
            role=role(u),
            resource_type="Patient",
        )
        for i, p in enumerate(victims)
    ]
    cases.append(
        AttackCase(
            "no-relationship-snooping",
            "T1213",
            "reads 6 unrelated patients",
            u,
            ev,
            "no-care-relationship",
            ctx,
        )
    )

    # 2. VIP snooping: one read of a VIP's record without a care relationship (T1213).
    u = users[1]
    vip = _pick_unrelated(ctx, u, patients, 1, rng)[0]
    vctx = ctx.with_vips([vip])
    ev = [
        _access(
            "atk/vip/0", day + timedelta(hours=14, minutes=3), u, vip, role=role(u), resource_type="Patient"
        )
    ]
    cases.append(
        AttackCase("vip-snooping", "T1213", "one read of a flagged VIP record", u, ev, "vip-snooping", vctx)
    )

    # 3. Same-surname snooping: a relative's record (T1213). Use a real surname collision if the directory
    #    has one; otherwise give the attacker the victim's surname (stated in notes).
    pair = next(
        (
            (uu, p)
            for uu in users[2:]
            for p in patients
            if ctx.same_surname(uu, p) and not ctx.has_relationship(uu, p)
        ),
        None,
    )
    notes: dict[str, str] = {}
    sctx = ctx
    if pair is None:
        uu = users[2]
        p = _pick_unrelated(ctx, uu, patients, 1, rng)[0]
        sctx = ctx.with_user(uu, surname=ctx.patient_surnames.get(p, "doe"))
        notes["surname"] = "assigned to the attacker by the generator"
        pair = (uu, p)
    else:
        notes["surname"] = "real collision in the directory"
    u, victim = pair
    ev = [
        _access("atk/surname/0", day + timedelta(hours=11), u, victim, role=role(u), resource_type="Patient")
    ]
    cases.append(
        AttackCase(
            "same-surname-snooping",
            "T1213",
            "reads a same-surname patient",
            u,
            ev,
            "same-surname",
            sctx,
            notes,
        )
    )

    # 4. Off-hours bulk read: 45 records of own patients at 02:00 (T1213 with T1078 Valid Accounts).
    u = users[3]
    mine = sorted(ctx.care[u])
    ev = [
        _access(
            f"atk/night/{i}",
            day + timedelta(hours=2, seconds=60 * i),
            u,
            rng.choice(mine),
            role=role(u),
            resource_type=rng.choice(RESOURCE_TYPES),
        )
        for i in range(45)
    ]
    cases.append(
        AttackCase("off-hours-bulk-read", "T1078", "45 reads at 02:00", u, ev, "off-hours-bulk", ctx)
    )

    # 5. Mass $export: system-level Group/$export of the whole bulk set (T1119 Automated Collection, T1567).
    u = users[4]
    ev = [
        _access(
            "atk/export/0",
            day + timedelta(hours=15),
            u,
            None,
            role=role(u),
            action="export",
            resource_type="Group",
            records=7160,
        )
    ]
    cases.append(
        AttackCase("mass-export", "T1119", "Group/$export of 7,160 resources", u, ev, "mass-export", ctx)
    )

    # 6. Rate burst: 150 reads of own patients within one working hour (T1119 Automated Collection).
    u = users[5]
    mine = sorted(ctx.care[u])
    ev = [
        _access(
            f"atk/burst/{i}",
            day + timedelta(hours=13, seconds=20 * i),
            u,
            rng.choice(mine),
            role=role(u),
            resource_type=rng.choice(RESOURCE_TYPES),
        )
        for i in range(150)
    ]
    cases.append(AttackCase("rate-burst", "T1119", "150 reads in one hour", u, ev, "rate-burst", ctx))
    return cases


_SUBTYPE = {
    "read": "read",
    "search": "search-type",
    "export": "export",
    "write": "update",
    "delete": "delete",
    "print": "read",
}
_CODE = {"read": "R", "search": "E", "export": "E", "write": "U", "delete": "D", "print": "R"}


def to_audit_event(access: RecordAccess) -> dict[str, Any]:
    """The FHIR R4 AuditEvent an EHR would write for this access (restful-interaction subtypes)."""
    entities: list[dict[str, Any]] = []
    if access.patient_id:
        entities.append(
            {
                "what": {"reference": f"Patient/{access.patient_id}"},
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1"},
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1"},
            }
        )
    if access.resource_type and access.resource_type != "Patient":
        entity: dict[str, Any] = {"what": {"reference": f"{access.resource_type}/{access.id}"}}
        if access.records > 1:
            entity["detail"] = [{"type": "count", "valueString": str(access.records)}]
        entities.append(entity)
    agent: dict[str, Any] = {"who": {"reference": access.user}, "requestor": True}
    if access.role:
        agent["role"] = [{"text": access.role}]
    if access.workstation:
        agent["network"] = {"address": access.workstation, "type": "1"}
    is_export = access.action == "export"
    return {
        "resourceType": "AuditEvent",
        "id": access.id,
        "type": {
            "system": "http://dicom.nema.org/resources/ontology/DCM",
            "code": "110106" if is_export else "110110",
            "display": "Export" if is_export else "Patient Record",
        },
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": _SUBTYPE[access.action]}],
        "action": _CODE[access.action],
        "recorded": access.ts.isoformat(),
        "outcome": "0",
        "agent": [agent],
        "source": {"observer": {"display": "EHR"}},
        "entity": entities,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Write benign traffic (14 days) plus every attack (day 15) as AuditEvent NDJSON."""
    import argparse

    from healthsec.ingest.fhir.bundles import load_directory

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out")
    parser.add_argument("--bundle", required=True, help="FHIR bulk-export directory (patients, encounters)")
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    directory = load_directory([args.bundle])
    ctx = directory.context
    events = benign_accesses(ctx, days=args.days + 1, seed=args.seed)
    cases = attack_cases(ctx, directory.patients, day=EPOCH + timedelta(days=args.days), seed=args.seed)
    for case in cases:
        events += case.events
    events.sort(key=lambda e: (e.ts, e.id))
    with open(args.out, "wb") as fh:
        for e in events:
            fh.write(orjson.dumps(to_audit_event(e)) + b"\n")
    print(
        f"wrote {len(events)} AuditEvents ({sum(len(c.events) for c in cases)} from {len(cases)} attacks)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
