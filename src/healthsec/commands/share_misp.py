"""``healthsec share import-misp``: a partner MISP event, converted by misp-stix, through the STIX import."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

import orjson
import typer

from healthsec.app import open_store
from healthsec.commands.groups import DbOption, console, fail, share_app
from healthsec.share.misp import MAX_MISP_BYTES, MispFormatError, from_misp_event, misp_tlp
from healthsec.store import StoreError


@share_app.command("import-misp")
def import_misp(
    file: Annotated[Path, typer.Argument(help="A partner's MISP event JSON ({'Event': {...}}).")],
    collection: Annotated[
        str, typer.Option("--collection", help="Local collection alias to store into.")
    ] = "inbox",
    source: Annotated[
        str | None, typer.Option("--source", help="Who sent it (default: the file name).")
    ] = None,
    db: DbOption = None,
) -> None:
    """Convert a MISP event to STIX 2.1 and import it whole, or quarantine it with the reason."""
    from healthsec.share.stix import import_bundle
    from healthsec.store.sharing import Sharing

    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from None
    try:
        store = open_store(db)
    except StoreError as exc:
        raise fail(str(exc)) from None
    try:
        sharing = Sharing.of(store)
        who = source or file.name
        try:
            objects = from_misp_event(raw, source=file.name)
        except ImportError as exc:  # misp-stix is installed with the test extra
            raise fail(f"MISP import needs misp-stix (pip install misp-stix): {exc}") from None
        except MispFormatError as exc:
            qid = sharing.quarantine.add(raw[: MAX_MISP_BYTES + 1], str(exc), source=who)
            store.audit.record("cli", "share.import-misp", file.name, rejected=str(exc))
            raise fail(f"rejected, nothing stored: {exc} (quarantined as {qid})") from None
        bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}
        res = import_bundle(orjson.dumps(bundle), sharing, collection=collection, source=who)
        store.audit.record("cli", "share.import-misp", file.name, added=res.added, rejected=res.rejected)
    finally:
        store.close()
    if not res.ok:
        raise fail(f"{file}: rejected, nothing stored: {res.rejected} (quarantined as {res.quarantine_id})")
    level = misp_tlp(orjson.loads(raw))
    kinds = ", ".join(f"{n} {t}" for t, n in sorted(res.by_type.items()))
    console.print(
        f"{file}: MISP event ({level.label if level else 'no TLP tag'}) -> {res.added} new STIX object "
        f"versions, {res.duplicates} already known ({kinds}) into {collection}",
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Commands live on the shared ``share`` group (registered by the CLI itself)."""
    del app
