"""``healthsec share export``: incidents as STIX 2.1 or MISP, through the privacy and policy exit door."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from healthsec.app import open_store
from healthsec.commands.groups import DbOption, console, fail, share_app
from healthsec.config import load_settings
from healthsec.model import Alert, Incident
from healthsec.share.keys import KeyMissing, load_keys
from healthsec.share.known import known_from_store
from healthsec.share.outbound import Cleared, known_identifiers, outbound
from healthsec.share.policy import COMMUNITY_IDENTITY, TLP, PartnerPolicy, policy_from_dict
from healthsec.share.stix_ids import sdo_id
from healthsec.store import StoreError

if TYPE_CHECKING:
    from healthsec.store import Store  # annotations only: SQLAlchemy loads when a command runs


def _partner(store: Store, name: str | None, tlp: TLP) -> PartnerPolicy:
    if name is None:
        if tlp is TLP.AMBER_STRICT:
            raise fail("TLP:AMBER+STRICT goes only to a named organisation: pass --partner NAME")
        # No partner named: a file for the whole community, never above the level asked for.
        return PartnerPolicy("community", str(COMMUNITY_IDENTITY["id"]), max_tlp=tlp)
    from healthsec.store.sharing import Sharing

    record = Sharing.of(store).partners.get(name)
    if record is None:
        raise fail(f"unknown partner {name!r} (see `healthsec share partners list`)")
    try:
        org = str(record["organisation"])
        if not org.startswith("identity--"):  # registered by name: the same identity id the STIX export uses
            org = sdo_id("identity", "organisation", org)
        return policy_from_dict(name, org, record.get("policy"))
    except ValueError as exc:
        raise fail(str(exc)) from None


def _selection(store: Store, incident_ids: list[str]) -> tuple[list[Incident], list[Alert]]:
    if incident_ids:
        incidents: list[Incident] = []
        for iid in incident_ids:
            inc = store.incidents.get(iid)
            if inc is None:
                raise fail(f"no incident {iid!r} in this database")
            incidents.append(inc)
    else:
        incidents = store.incidents.list(limit=max(store.incidents.count(), 1))
    alerts = [a for i in incidents for aid in i.alert_ids if (a := store.alerts.get(aid)) is not None]
    return incidents, alerts


def _technique_names(cleared: Cleared) -> dict[str, str]:
    """ATT&CK names from the pinned local copy, so MISP galaxy tags match MISP's clusters."""
    from healthsec.ingest.attack_data import AttackDataError, load_attack

    ids = {
        str(r.get("external_id"))
        for o in cleared.objects
        if o.get("type") == "attack-pattern"
        for r in o.get("external_references") or ()
        if r.get("source_name") == "mitre-attack"
    }
    try:
        kb = load_attack()
    except AttackDataError as exc:
        console.print(f"[yellow]warning:[/] ATT&CK data unavailable ({exc}); galaxy tags carry ids only")
        return {}
    return {t: tech.name for t in ids if (tech := kb.technique(t)) is not None}


def _write(cleared: Cleared, fmt: str, to: Path, title: str | None) -> None:
    if fmt == "misp":
        from healthsec.share.misp import dumps_misp, to_misp_event

        try:
            event = to_misp_event(cleared, title=title, technique_names=_technique_names(cleared))
        except ImportError as exc:  # misp-stix is installed with the test extra
            raise fail(f"MISP export needs misp-stix (pip install misp-stix): {exc}") from None
        data = dumps_misp(event)
    else:
        from healthsec.share.stix import dumps_bundle

        data = dumps_bundle(cleared.bundle())
    to.write_bytes(data)


@share_app.command("export")
def export(
    to: Annotated[Path, typer.Option("--to", help="File to write (the STIX bundle or the MISP event JSON).")],
    incident: Annotated[
        list[str] | None, typer.Option("--incident", help="Incident id to share (repeat; default: all).")
    ] = None,
    tlp: Annotated[
        str, typer.Option("--tlp", help="TLP 2.0 marking: clear, green, amber, amber+strict.")
    ] = "amber",
    partner: Annotated[str | None, typer.Option("--partner", help="Registered partner receiving it.")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="stix (STIX 2.1 bundle) or misp (MISP event JSON).")
    ] = "stix",
    key_file: Annotated[
        Path | None, typer.Option("--key-file", help="Community key file (else $HEALTHSEC_SHARING_KEY).")
    ] = None,
    producer: Annotated[
        str | None, typer.Option("--producer", help="Our organisation's public name.")
    ] = None,
    internal_net: Annotated[
        list[str] | None, typer.Option("--internal-net", help="Extra internal CIDR to pseudonymise (repeat).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Export incidents for a partner: privacy transforms, TLP and the partner's rules always apply."""
    if fmt not in ("stix", "misp"):
        raise fail(f"--format must be stix or misp, not {fmt!r}")
    try:
        level = TLP.parse(tlp)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if level is TLP.RED:
        raise fail("TLP:RED never leaves this organisation; nothing was written")
    try:
        keys = load_keys(key_file)
    except KeyMissing as exc:
        raise fail(str(exc)) from None
    try:
        store = open_store(db)
    except StoreError as exc:
        raise fail(str(exc)) from None
    try:
        recipient = _partner(store, partner, level)
        incidents, alerts = _selection(store, incident or [])
        if not incidents:
            raise fail("no incidents to share (run `healthsec correlate` or pass --incident ID)")
        from healthsec.share.stix import export_bundle

        name = producer or load_settings().org
        bundle = export_bundle(incidents, alerts, producer=name, tlp=level)
        try:
            known = known_identifiers(incidents, alerts)
            for kind, values in known_from_store(store).items():  # inventory names appear in prose too
                known.setdefault(kind, set()).update(values)
            cleared = outbound(
                bundle["objects"],
                recipient,
                keys,
                known=known,
                internal_networks=internal_net or (),
            )
        except ValueError as exc:
            raise fail(f"--internal-net: {exc}") from None
        shared = [o for o in cleared.objects if o.get("type") not in ("marking-definition", "identity")]
        if not shared:
            raise fail(
                f"the policy for {recipient.name!r} withholds everything ({len(cleared.withheld)} objects)"
            )
        title = incidents[0].title if len(incidents) == 1 else f"{len(incidents)} incidents from {name}"
        try:
            _write(cleared, fmt, to, title)
        except OSError as exc:
            raise fail(f"cannot write {to}: {exc.strerror}") from None
        store.audit.record(
            "cli",
            "share.export",
            recipient.name,
            format=fmt,
            tlp=level.value,
            incidents=[i.id for i in incidents],
            objects=len(cleared.objects),
            withheld=len(cleared.withheld),
        )
    finally:
        store.close()
    console.print(
        f"wrote {len(cleared.objects)} STIX objects ({len(cleared.withheld)} withheld by policy) for "
        f"{recipient.name} as {fmt} to {to}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Commands live on the shared ``share`` group (registered by the CLI itself)."""
    del app
