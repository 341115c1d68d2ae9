"""Use cases over model artefacts (list, show, promote, retire), shared by the CLI and the API."""

from __future__ import annotations

from healthsec.detect.artefacts_load import load_artefact
from healthsec.model.artefacts import ModelArtefact
from healthsec.store import Store
from healthsec.store.models import ArtefactNotFound, models


def list_models(store: Store, kind: str | None = None, status: str | None = None) -> list[ModelArtefact]:
    return models(store).list(kind=kind, status=status)


def show_model(store: Store, ref: str) -> ModelArtefact:
    """By id (``flows-v3``), ``kind:version``, or kind (its promoted, else newest); ArtefactNotFound."""
    found = models(store).find(ref)
    if found is None:
        raise ArtefactNotFound(f"no model {ref!r} in organisation {store.org}")
    return found


def promote_model(store: Store, kind: str, version: int, *, actor: str = "cli") -> ModelArtefact:
    """Check that the artefact loads (ArtefactRefused, one line, if not), then put it in service.

    The previously promoted version of the kind becomes retired; workers pick the change up on
    their next poll. Recorded in the audit log.
    """
    repo = models(store)
    target = repo.require(kind, version)
    load_artefact(target, repo.files(target.id))
    previous = repo.promoted(kind)
    promoted = repo.promote(kind, version)
    store.audit.record(
        actor,
        "model.promote",
        promoted.id,
        kind=kind,
        version=version,
        replaced=None if previous is None or previous.id == promoted.id else previous.id,
    )
    return promoted


def retire_model(store: Store, kind: str, version: int, *, actor: str = "cli") -> ModelArtefact:
    """Take a version out of service (or out of the candidates); audited."""
    retired = models(store).retire(kind, version)
    store.audit.record(actor, "model.retire", retired.id, kind=kind, version=version)
    return retired
