"""Sharing use cases that move partner data: import a STIX bundle or MISP event, pull from and push to
partners' TAXII servers. Nothing is half-stored: a bad bundle is quarantined with the reason."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from healthsec.services.common import Refused

if TYPE_CHECKING:
    from healthsec.privacy.pseudonymise import SharingKeys
    from healthsec.share.stix_import import ImportResult
    from healthsec.share.taxii_client import SyncResult
    from healthsec.store import Store


class Quarantined(Refused):
    """The partner's data was refused whole and kept in quarantine (``quarantine_id``)."""

    def __init__(self, message: str, quarantine_id: str | None) -> None:
        super().__init__(message)
        self.quarantine_id = quarantine_id


@dataclass(frozen=True, slots=True)
class MispImported:
    result: ImportResult
    tlp: str | None  # the TLP label the event's tags name, None when untagged


def import_stix(
    store: Store,
    raw: bytes,
    *,
    source: str,
    actor: str,
    collection: str = "inbox",
    max_bytes: int = 50 * 1024 * 1024,
) -> ImportResult:
    """Import a partner's STIX 2.1 bundle whole, or quarantine it and raise :class:`Quarantined`."""
    from healthsec.services.intel import raise_incidents_for_reports
    from healthsec.share.stix import import_bundle
    from healthsec.store.sharing import Sharing

    # a partner's report naming techniques seen in open local incidents raises their priority
    res = import_bundle(
        raw,
        Sharing.of(store),
        collection=collection,
        source=source,
        max_bytes=max_bytes,
        on_reports=lambda reports, objects: raise_incidents_for_reports(store, reports, objects),
    )
    store.audit.record(actor, "share.import", source, added=res.added, rejected=res.rejected)
    if not res.ok:
        raise Quarantined(
            f"{source}: rejected, nothing stored: {res.rejected} (quarantined as {res.quarantine_id})",
            res.quarantine_id,
        )
    return res


def import_misp(
    store: Store, raw: bytes, *, source: str, actor: str, collection: str = "inbox", name: str | None = None
) -> MispImported:
    """Convert a partner's MISP event to STIX 2.1 (misp-stix) and import it whole, or quarantine it."""
    import orjson

    from healthsec.share.misp import MAX_MISP_BYTES, MispFormatError, from_misp_event, misp_tlp
    from healthsec.share.stix import import_bundle
    from healthsec.store.sharing import Sharing

    label = name or source
    sharing = Sharing.of(store)
    try:
        objects = from_misp_event(raw, source=label)
    except ImportError as exc:  # misp-stix is installed with the test extra
        raise Refused(f"MISP import needs misp-stix (pip install misp-stix): {exc}") from None
    except MispFormatError as exc:
        qid = sharing.quarantine.add(raw[: MAX_MISP_BYTES + 1], str(exc), source=source)
        store.audit.record(actor, "share.import-misp", label, rejected=str(exc))
        raise Quarantined(f"rejected, nothing stored: {exc} (quarantined as {qid})", qid) from None
    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}
    res = import_bundle(orjson.dumps(bundle), sharing, collection=collection, source=source)
    store.audit.record(actor, "share.import-misp", label, added=res.added, rejected=res.rejected)
    if not res.ok:
        raise Quarantined(
            f"{label}: rejected, nothing stored: {res.rejected} (quarantined as {res.quarantine_id})",
            res.quarantine_id,
        )
    level = misp_tlp(orjson.loads(raw))
    return MispImported(res, level.label if level else None)


def pull(store: Store, names: Sequence[str] | None = None) -> list[SyncResult]:
    """Pull what partners added since last time (each partner's secret: $HEALTHSEC_TAXII_SECRET_<NAME>)."""
    from healthsec.share.taxii_client import pull_all
    from healthsec.store.sharing import Sharing

    return pull_all(Sharing.of(store), names=names or None)


def push(
    store: Store, keys: SharingKeys, names: Sequence[str] | None = None, *, collection: str = "ours"
) -> list[SyncResult]:
    """Push our new objects to partners' servers, each cleared for that partner by the exit door."""
    from healthsec.share.taxii_client import partner_secret
    from healthsec.share.taxii_client import push as push_one
    from healthsec.store.sharing import Sharing

    sh = Sharing.of(store)
    targets = [p for p in sh.partners.list() if p.get("url") and (not names or p["name"] in names)]
    return [
        push_one(sh, p["name"], secret=partner_secret(p["name"]), keys=keys, collection=collection)
        for p in targets
    ]
