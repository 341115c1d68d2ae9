"""``healthsec share partners|import|publish|pull|push|taxii``: TAXII 2.1 partners, feeds and our server."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Annotated

import typer

from healthsec.app import open_store
from healthsec.commands.groups import DbOption, console, fail, share_app
from healthsec.store import Store, StoreError
from healthsec.store.sharing import Sharing

partners_app = typer.Typer(
    help="Partner organisations: credentials, rights, their TAXII server.", no_args_is_help=True
)
share_app.add_typer(partners_app, name="partners")


def _open(db: str | None) -> Store:
    try:
        return open_store(db)
    except StoreError as exc:
        raise fail(str(exc)) from None


@partners_app.command("add")
def partners_add(
    name: Annotated[str, typer.Argument(help="Short name the partner logs in with, e.g. stmary.")],
    organisation: Annotated[
        str, typer.Option("--organisation", help="Their organisation name or STIX identity id.")
    ],
    new_secret: Annotated[
        bool,
        typer.Option("--new-secret", help="Generate their secret for our TAXII server and print it once."),
    ] = False,
    secret_env: Annotated[
        str | None, typer.Option("--secret-env", help="Take their secret for our server from this variable.")
    ] = None,
    read: Annotated[
        list[str] | None, typer.Option("--read", help="Collection alias they may read (repeat).")
    ] = None,
    write: Annotated[
        list[str] | None, typer.Option("--write", help="Collection alias they may write (repeat).")
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="Their TAXII 2.1 API root URL (for pull/push).")
    ] = None,
    collection: Annotated[
        str | None, typer.Option("--collection", help="Their collection id we pull.")
    ] = None,
    push_collection: Annotated[
        str | None, typer.Option("--push-collection", help="Their collection id we push to.")
    ] = None,
    remote_user: Annotated[
        str | None, typer.Option("--remote-user", help="Our user name on their server.")
    ] = None,
    max_tlp: Annotated[
        str, typer.Option("--max-tlp", help="Highest TLP they receive: clear, green, amber, amber+strict.")
    ] = "green",
    types: Annotated[
        str | None, typer.Option("--types", help="Comma-separated STIX types they receive.")
    ] = None,
    min_confidence: Annotated[
        int, typer.Option("--min-confidence", help="Minimum confidence they receive.")
    ] = 0,
    anonymous: Annotated[bool, typer.Option("--anonymous", help="Send without our identity.")] = False,
    db: DbOption = None,
) -> None:
    """Add or update a partner; their secret is stored hashed (scrypt) and shown once with --new-secret."""
    from healthsec.share.policy import policy_from_dict, policy_to_dict
    from healthsec.share.stix_ids import sdo_id

    if new_secret and secret_env:
        raise fail("use either --new-secret or --secret-env")
    secret: str | None = None
    if secret_env:
        secret = os.environ.get(secret_env)
        if not secret:
            raise fail(f"${secret_env} is empty or not set")
    elif new_secret:
        secret = secrets.token_urlsafe(24)
    org = (
        organisation
        if organisation.startswith("identity--")
        else sdo_id("identity", "organisation", organisation)
    )
    rules: dict[str, object] = {"max_tlp": max_tlp, "min_confidence": min_confidence, "anonymous": anonymous}
    if types:
        rules["allowed_types"] = sorted({t.strip() for t in types.split(",") if t.strip()})
    try:
        policy = policy_to_dict(policy_from_dict(name, org, rules))
    except ValueError as exc:
        raise fail(str(exc)) from None
    store = _open(db)
    try:
        sh = Sharing.of(store)
        sh.partners.add(
            name,
            org,
            secret=secret,
            url=url,
            remote_collection=collection,
            remote_user=remote_user,
            policy=policy,
            push_collection=push_collection,
        )
        for alias in sorted(set(read or []) | set(write or [])):
            coll = sh.collections.ensure(alias, alias)
            sh.partners.grant(name, coll["id"], read=alias in (read or []), write=alias in (write or []))
        store.audit.record(
            "cli", "share.partner.add", name, organisation=org, read=read or [], write=write or []
        )
    finally:
        store.close()
    console.print(f"partner {name} ({org}) saved; policy {policy}", highlight=False, soft_wrap=True)
    if new_secret:
        # printed plainly on its own line so that it is copied whole; it is never stored or logged in clear
        print(f"their secret for our TAXII server (shown once, stored hashed): {secret}")


@partners_app.command("list")
def partners_list(db: DbOption = None) -> None:
    """List partners, their rights on our collections and the state of their pull cursor."""
    store = _open(db)
    try:
        sh = Sharing.of(store)
        names = {c["id"]: c.get("alias") or c["title"] for c in sh.collections.list()}
        rows = sh.partners.list()
        if not rows:
            console.print("no partners yet (healthsec share partners add NAME --organisation ORG)")
        for p in rows:
            rights = ", ".join(
                f"{names.get(cid, cid)}:{'r' if r else ''}{'w' if w else ''}"
                for cid, (r, w) in sh.partners.rights(p["name"]).items()
            )
            cur = sh.cursors.get(p["name"], str(p.get("remote_collection") or ""))
            state = "never pulled"
            if cur:
                state = f"pulled {cur['pulled']} objects, cursor {cur['added_after']}"
                if cur["last_error"]:
                    state += f", last error: {cur['last_error']}"
            console.print(
                f"{p['name']}  {p['organisation']}  secret:{'yes' if p['has_secret'] else 'no'}  "
                f"rights: {rights or '-'}  policy: {p['policy']}  url: {p['url'] or '-'}  {state}",
                highlight=False,
                soft_wrap=True,
            )
    finally:
        store.close()


@share_app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="A partner's STIX 2.1 bundle (JSON).")],
    collection: Annotated[
        str, typer.Option("--collection", help="Local collection alias to store into.")
    ] = "inbox",
    source: Annotated[
        str | None, typer.Option("--source", help="Who sent it (default: the file name).")
    ] = None,
    max_mb: Annotated[int, typer.Option("--max-mb", help="Refuse bundles larger than this.")] = 50,
    db: DbOption = None,
) -> None:
    """Import a partner bundle whole, or quarantine it with the reason; nothing is half-stored."""
    from healthsec.services.intel import raise_incidents_for_reports
    from healthsec.share.stix import import_bundle

    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from None
    store = _open(db)
    try:
        res = import_bundle(
            raw,
            Sharing.of(store),
            collection=collection,
            source=source or file.name,
            max_bytes=max_mb * 1024 * 1024,
            on_reports=lambda reports, objects: raise_incidents_for_reports(store, reports, objects),
        )
        store.audit.record("cli", "share.import", str(file.name), added=res.added, rejected=res.rejected)
    finally:
        store.close()
    if not res.ok:
        raise fail(f"{file}: rejected, nothing stored: {res.rejected} (quarantined as {res.quarantine_id})")
    kinds = ", ".join(f"{n} {t}" for t, n in sorted(res.by_type.items()))
    console.print(
        f"{file}: {res.added} new object versions, {res.duplicates} already known ({kinds}) "
        f"into {collection}",
        highlight=False,
        soft_wrap=True,
    )


@share_app.command("publish")
def publish(
    tlp: Annotated[
        str, typer.Option("--tlp", help="TLP 2.0 marking: clear, green, amber, amber+strict.")
    ] = "amber",
    collection: Annotated[
        str, typer.Option("--collection", help="Our collection alias partners read.")
    ] = "ours",
    producer: Annotated[
        str | None, typer.Option("--producer", help="Our organisation's public name.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Put our incidents and their alerts as STIX into our TAXII collection (served through the exit door)."""
    from healthsec.config import load_settings
    from healthsec.share.policy import TLP
    from healthsec.share.stix import export_bundle

    try:
        level = TLP.parse(tlp)
    except ValueError as exc:
        raise fail(str(exc)) from None
    store = _open(db)
    try:
        incidents = store.incidents.list(limit=max(store.incidents.count(), 1))
        alerts = [a for i in incidents for aid in i.alert_ids if (a := store.alerts.get(aid)) is not None]
        if not incidents:
            raise fail("no incidents to publish (run the analysis first)")
        bundle = export_bundle(incidents, alerts, producer=producer or load_settings().org, tlp=level)
        sh = Sharing.of(store)
        coll = sh.collections.ensure(collection, "Published by us" if collection == "ours" else collection)
        res = sh.objects.add_many(coll["id"], bundle["objects"])
        store.audit.record("cli", "share.publish", collection, added=len(res.added), tlp=level.value)
    finally:
        store.close()
    console.print(
        f"published {len(res.added)} new STIX objects ({len(res.duplicates)} unchanged) "
        f"from {len(incidents)} incidents into collection {collection} ({coll['id']})",
        highlight=False,
        soft_wrap=True,
    )


@share_app.command("pull")
def pull_cmd(
    partner: Annotated[
        list[str] | None, typer.Option("--partner", help="Only this partner (repeat).")
    ] = None,
    every: Annotated[
        float | None, typer.Option("--every", help="Repeat every N seconds (Ctrl-C stops).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Pull what partners added since last time; their secrets come from $HEALTHSEC_TAXII_SECRET_<PARTNER>."""
    from healthsec.share.taxii_client import pull_all

    store = _open(db)
    try:
        while True:
            results = pull_all(Sharing.of(store), names=partner)
            if not results:
                console.print(
                    "no partner with a TAXII URL (healthsec share partners add ... --url URL --collection ID)"
                )
            for r in results:
                if r.error:
                    console.print(
                        f"{r.partner}: pull failed, will retry: {r.error}", highlight=False, soft_wrap=True
                    )
                else:
                    console.print(
                        f"{r.partner}: {r.objects} objects received, {r.added} new, {r.duplicates} known, "
                        f"{r.rejected} quarantined; cursor {r.cursor}",
                        highlight=False,
                        soft_wrap=True,
                    )
            if every is None:
                break
            time.sleep(every)
    finally:
        store.close()


@share_app.command("push")
def push_cmd(
    partner: Annotated[
        list[str] | None, typer.Option("--partner", help="Only this partner (repeat).")
    ] = None,
    collection: Annotated[
        str, typer.Option("--collection", help="Our collection alias to push from.")
    ] = "ours",
    key_file: Annotated[
        Path | None, typer.Option("--key-file", help="Community key file (else $HEALTHSEC_SHARING_KEY).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Push our new objects to partners' servers, each cleared for that partner by the exit door."""
    from healthsec.share.keys import KeyMissing, load_keys
    from healthsec.share.taxii_client import partner_secret, push

    try:
        keys = load_keys(key_file)
    except KeyMissing as exc:
        raise fail(str(exc)) from None
    store = _open(db)
    failed = False
    try:
        sh = Sharing.of(store)
        targets = [p for p in sh.partners.list() if p.get("url") and (not partner or p["name"] in partner)]
        if not targets:
            console.print("no partner with a TAXII URL to push to")
        for p in targets:
            r = push(sh, p["name"], secret=partner_secret(p["name"]), keys=keys, collection=collection)
            if r.error:
                failed = True
                console.print(
                    f"{r.partner}: push failed, will retry: {r.error}", highlight=False, soft_wrap=True
                )
            else:
                console.print(
                    f"{r.partner}: {r.objects} objects sent; cursor {r.cursor}",
                    highlight=False,
                    soft_wrap=True,
                )
    finally:
        store.close()
    if failed:
        raise typer.Exit(1)


@share_app.command("taxii")
def taxii_serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to bind.")] = 9443,
    key_file: Annotated[
        Path | None, typer.Option("--key-file", help="Community key file (else $HEALTHSEC_SHARING_KEY).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Run only the TAXII 2.1 server in the foreground (the same router can be mounted in the API)."""
    import uvicorn

    from healthsec.share.keys import KeyMissing, load_keys
    from healthsec.share.taxii_server import create_taxii_app

    try:
        keys = load_keys(key_file)
    except KeyMissing as exc:
        raise fail(str(exc)) from None
    store = _open(db)
    console.print(
        f"TAXII 2.1 discovery at http://{host}:{port}/taxii2/ (Ctrl-C stops)", highlight=False, soft_wrap=True
    )
    try:
        uvicorn.run(create_taxii_app(lambda: store, keys=keys), host=host, port=port, log_level="warning")
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    """Commands live on the shared ``share`` group (registered by the CLI itself)."""
    del app
