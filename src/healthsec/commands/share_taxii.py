"""``healthsec share partners|import|publish|pull|push|taxii``: TAXII 2.1 partners, feeds and our server."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from healthsec.commands.adapter import (
    CLI_ACTOR,
    FormatOption,
    InboxOption,
    KeyFileOption,
    SourceOption,
    emit,
    opened,
    our_name,
    read_input,
    sharing_keys,
    wants_json,
)
from healthsec.commands.groups import DbOption, console, fail, share_app
from healthsec.config import env_var
from healthsec.services import share as share_use
from healthsec.services import share_sync

if TYPE_CHECKING:
    from healthsec.share.taxii_client import SyncResult

partners_app = typer.Typer(
    help="Partner organisations: credentials, rights, their TAXII server.", no_args_is_help=True
)
share_app.add_typer(partners_app, name="partners")


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
    if new_secret and secret_env:
        raise fail("use either --new-secret or --secret-env")
    secret: str | None = None
    if secret_env:
        secret = env_var(secret_env)
        if not secret:
            raise fail(f"${secret_env} is empty or not set")
    elif new_secret:
        secret = secrets.token_urlsafe(24)
    rules: dict[str, object] = {"max_tlp": max_tlp, "min_confidence": min_confidence, "anonymous": anonymous}
    if types:
        rules["allowed_types"] = sorted({t.strip() for t in types.split(",") if t.strip()})
    with opened(db) as store:
        saved = share_use.save_partner(
            store,
            name,
            organisation,
            actor=CLI_ACTOR,
            secret=secret,
            url=url,
            remote_collection=collection,
            push_collection=push_collection,
            remote_user=remote_user,
            policy=rules,
            read=read or [],
            write=write or [],
        )
    console.print(
        f"partner {name} ({saved['organisation']}) saved; policy {saved['policy']}",
        highlight=False,
        soft_wrap=True,
    )
    if new_secret:
        # printed plainly on its own line so that it is copied whole; it is never stored or logged in clear
        print(f"their secret for our TAXII server (shown once, stored hashed): {secret}")


@partners_app.command("list")
def partners_list(db: DbOption = None, fmt: FormatOption = "table") -> None:
    """List partners, their rights on our collections and the state of their pull cursor."""
    as_json = wants_json(fmt)
    with opened(db) as store:
        rows = share_use.list_partners(store)
    if as_json:
        emit([{"partner": r.partner, "rights": r.rights, "cursor": r.cursor} for r in rows])
        return
    if not rows:
        console.print("no partners yet (healthsec share partners add NAME --organisation ORG)")
    for row in rows:
        p, cur = row.partner, row.cursor
        rights = ", ".join(f"{alias}:{mode}" for alias, mode in row.rights.items())
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


@share_app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="A partner's STIX 2.1 bundle (JSON).")],
    collection: InboxOption = "inbox",
    source: SourceOption = None,
    max_mb: Annotated[int, typer.Option("--max-mb", help="Refuse bundles larger than this.")] = 50,
    db: DbOption = None,
) -> None:
    """Import a partner bundle whole, or quarantine it with the reason; nothing is half-stored."""
    raw = read_input(file)
    with opened(db) as store:
        res = share_sync.import_stix(
            store,
            raw,
            source=source or file.name,
            actor=CLI_ACTOR,
            collection=collection,
            max_bytes=max_mb * 1024 * 1024,
        )
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
        str | None,
        typer.Option(
            "--tlp",
            help="TLP 2.0 marking: clear, green, amber, amber+strict (default amber; clear for advisories).",
        ),
    ] = None,
    collection: Annotated[
        str | None,
        typer.Option("--collection", help="Our collection alias partners read (default ours; advisories)."),
    ] = None,
    producer: Annotated[
        str | None, typer.Option("--producer", help="Our organisation's public name.")
    ] = None,
    advisories: Annotated[
        bool,
        typer.Option(
            "--advisories", help="Publish the imported CSAF advisories (report + CVE vulnerability objects)."
        ),
    ] = False,
    db: DbOption = None,
) -> None:
    """Put our incidents and their alerts (or, with --advisories, the imported advisories) as STIX into a
    TAXII collection; partners read it through the exit door."""
    if advisories:
        from healthsec.services.intel import publish_advisories

        with opened(db) as store:
            adv = publish_advisories(
                store,
                actor=CLI_ACTOR,
                producer=our_name(producer),
                tlp=tlp or "clear",
                collection=collection or "advisories",
            )
        console.print(
            f"published {adv.added} new STIX objects ({adv.duplicates} unchanged) "
            f"from {adv.advisories} advisories into collection {adv.collection} ({adv.collection_id})",
            highlight=False,
            soft_wrap=True,
        )
        return
    with opened(db) as store:
        res = share_use.publish(
            store,
            actor=CLI_ACTOR,
            producer=our_name(producer),
            tlp=tlp or "amber",
            collection=collection or "ours",
        )
    console.print(
        f"published {res.added} new STIX objects ({res.unchanged} unchanged) "
        f"from {res.incidents} incidents into collection {res.collection} ({res.collection_id})",
        highlight=False,
        soft_wrap=True,
    )


def _report(r: SyncResult, what: str, done: str) -> bool:
    """Print one partner's pull or push; True when it failed."""
    if r.error:
        console.print(f"{r.partner}: {what} failed, will retry: {r.error}", highlight=False, soft_wrap=True)
        return True
    console.print(f"{r.partner}: {done}; cursor {r.cursor}", highlight=False, soft_wrap=True)
    return False


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
    """Pull what partners added since last time; their secrets come from $HEALTHSEC_TAXII_SECRET_<PARTNER>.

    Exits 1 when any partner failed (each is retried from its cursor on the next run).
    """
    with opened(db) as store:
        while True:
            results = share_sync.pull(store, partner)
            if not results:
                console.print(
                    "no partner with a TAXII URL (healthsec share partners add ... --url URL --collection ID)"
                )
            failed = [
                _report(
                    r,
                    "pull",
                    f"{r.objects} objects received, {r.added} new, {r.duplicates} known, "
                    f"{r.rejected} quarantined",
                )
                for r in results
            ]
            if every is None:
                break
            time.sleep(every)
    if any(failed):  # a scheduled single pull must see that a partner failed
        raise typer.Exit(1)


@share_app.command("push")
def push_cmd(
    partner: Annotated[
        list[str] | None, typer.Option("--partner", help="Only this partner (repeat).")
    ] = None,
    collection: Annotated[
        str, typer.Option("--collection", help="Our collection alias to push from.")
    ] = "ours",
    key_file: KeyFileOption = None,
    db: DbOption = None,
) -> None:
    """Push our new objects to partners' servers, each cleared for that partner by the exit door."""
    keys = sharing_keys(key_file)
    with opened(db) as store:
        results = share_sync.push(store, keys, partner, collection=collection)
    if not results:
        console.print("no partner with a TAXII URL to push to")
    failed = [_report(r, "push", f"{r.objects} objects sent") for r in results]
    if any(failed):
        raise typer.Exit(1)


@share_app.command("taxii")
def taxii_serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to bind.")] = 9443,
    key_file: KeyFileOption = None,
    db: DbOption = None,
) -> None:
    """Run only the TAXII 2.1 server in the foreground (the same router can be mounted in the API)."""
    import uvicorn

    from healthsec.app import open_store
    from healthsec.share.taxii_server import create_taxii_app
    from healthsec.store import StoreError

    keys = sharing_keys(key_file)
    try:
        store = open_store(db)
    except StoreError as exc:
        raise fail(str(exc)) from None
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
