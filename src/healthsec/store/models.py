"""Model artefacts in the store (metadata + files, per organisation) and a watcher that loads promotions.

Versions are numbered per organisation and kind, 1, 2, 3, ... and never reused. Exactly one artefact
per kind is ``promoted`` (a partial unique index holds it in the database too); promoting another
one turns the previous one ``retired``, and a retired artefact can be promoted again (roll back).
Files are stored one row each (bytes + SHA-256), so no archive format is parsed on the way back.
"""

from __future__ import annotations

import builtins
import dataclasses
import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from healthsec.detect.artefacts_load import ArtefactRefused, LoadedModel, check_files, load_artefact
from healthsec.model.artefacts import ArtefactStatus, ModelArtefact
from healthsec.store.schema_models import model_artefacts, model_files
from healthsec.store.sql import Store, StoreError

log = logging.getLogger(__name__)
_ATTEMPTS = 5


class ArtefactNotFound(LookupError):
    """No artefact of that kind and version (or id) in the organisation; ``str()`` is one line."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "model artefact not found"


def _from_row(status: str, body: Mapping[str, Any]) -> ModelArtefact:
    return ModelArtefact.from_dict({**body, "status": status})


@dataclass
class ModelRepository:
    engine: Engine
    org: str

    def add(self, artefact: ModelArtefact, files: Mapping[str, bytes]) -> ModelArtefact:
        """Store a new candidate with the next version of its kind; returns it numbered.

        The files must be exactly those the metadata records, with the recorded SHA-256 digests.
        """
        try:
            check_files(artefact, files)
        except ArtefactRefused as exc:
            raise ValueError(exc.reason) from None
        t = model_artefacts
        for _ in range(_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    top = conn.execute(
                        select(func.max(t.c.version)).where(t.c.org == self.org, t.c.kind == artefact.kind)
                    ).scalar()
                    stored = dataclasses.replace(
                        artefact, version=int(top or 0) + 1, status=ArtefactStatus.CANDIDATE
                    )
                    conn.execute(
                        t.insert().values(
                            org=self.org,
                            id=stored.id,
                            kind=stored.kind,
                            version=stored.version,
                            status=stored.status.value,
                            created_at=stored.created_at,
                            body=stored.to_dict(),
                        )
                    )
                    conn.execute(
                        model_files.insert(),
                        [
                            {
                                "org": self.org,
                                "artefact_id": stored.id,
                                "name": name,
                                "sha256": stored.files[name],
                                "data": data,
                            }
                            for name, data in sorted(files.items())
                        ],
                    )
                return stored
            except IntegrityError:  # another writer took the same version number: take the next one
                continue
        raise StoreError(f"could not number a new {artefact.kind} model after {_ATTEMPTS} attempts")

    def list(self, kind: str | None = None, status: str | None = None) -> builtins.list[ModelArtefact]:
        """Artefacts by kind, then version."""
        t = model_artefacts
        stmt = select(t.c.status, t.c.body).where(t.c.org == self.org)
        if kind:
            stmt = stmt.where(t.c.kind == kind)
        if status:
            stmt = stmt.where(t.c.status == status)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt.order_by(t.c.kind, t.c.version)).all()
        return [_from_row(s, b) for s, b in rows]

    def get(self, artefact_id: str) -> ModelArtefact | None:
        t = model_artefacts
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.c.status, t.c.body).where(t.c.org == self.org, t.c.id == artefact_id)
            ).first()
        return None if row is None else _from_row(row[0], row[1])

    def get_version(self, kind: str, version: int) -> ModelArtefact | None:
        t = model_artefacts
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.c.status, t.c.body).where(
                    t.c.org == self.org, t.c.kind == kind, t.c.version == version
                )
            ).first()
        return None if row is None else _from_row(row[0], row[1])

    def find(self, ref: str) -> ModelArtefact | None:
        """By id (``flows-v3``), ``kind:version`` (``flows:3``), or kind (its promoted, else newest)."""
        if ":" in ref:
            kind, _, number = ref.partition(":")
            return self.get_version(kind, int(number)) if number.isdigit() else None
        found = self.get(ref)
        if found is not None:
            return found
        promoted = self.promoted(ref)
        if promoted is not None:
            return promoted
        versions = self.list(kind=ref)
        return versions[-1] if versions else None

    def files(self, artefact_id: str) -> dict[str, bytes]:
        f = model_files
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(f.c.name, f.c.data).where(f.c.org == self.org, f.c.artefact_id == artefact_id)
            ).all()
        return {str(name): bytes(data) for name, data in rows}

    def promoted(self, kind: str) -> ModelArtefact | None:
        t = model_artefacts
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.c.status, t.c.body).where(
                    t.c.org == self.org, t.c.kind == kind, t.c.status == ArtefactStatus.PROMOTED.value
                )
            ).first()
        return None if row is None else _from_row(row[0], row[1])

    def promoted_ids(self, kinds: Iterable[str] | None = None) -> dict[str, str]:
        """kind -> id of its promoted artefact, in one query (what a watcher polls)."""
        t = model_artefacts
        stmt = select(t.c.kind, t.c.id).where(
            t.c.org == self.org, t.c.status == ArtefactStatus.PROMOTED.value
        )
        if kinds is not None:
            stmt = stmt.where(t.c.kind.in_(list(kinds)))
        with self.engine.connect() as conn:
            return {str(k): str(i) for k, i in conn.execute(stmt)}

    def require(self, kind: str, version: int) -> ModelArtefact:
        """The artefact, or ArtefactNotFound naming the versions that do exist."""
        found = self.get_version(kind, version)
        if found is None:
            known = [a.version for a in self.list(kind=kind)]
            have = f"known versions: {', '.join(map(str, known))}" if known else "none stored"
            raise ArtefactNotFound(f"no {kind} model version {version} in organisation {self.org} ({have})")
        return found

    def promote(self, kind: str, version: int) -> ModelArtefact:
        """Put ``kind`` v``version`` in service; the previously promoted one becomes retired."""
        target = self.require(kind, version)
        if target.status is ArtefactStatus.PROMOTED:
            return target
        t = model_artefacts
        for _ in range(_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        update(t)
                        .where(
                            t.c.org == self.org, t.c.kind == kind, t.c.status == ArtefactStatus.PROMOTED.value
                        )
                        .values(status=ArtefactStatus.RETIRED.value)
                    )
                    conn.execute(
                        update(t)
                        .where(t.c.org == self.org, t.c.id == target.id)
                        .values(status=ArtefactStatus.PROMOTED.value)
                    )
                return dataclasses.replace(target, status=ArtefactStatus.PROMOTED)
            except IntegrityError:  # a concurrent promotion of the same kind won the index: go again
                continue
        raise StoreError(f"could not promote {target.id}: concurrent promotions of {kind}")

    def retire(self, kind: str, version: int) -> ModelArtefact:
        """Take ``kind`` v``version`` out of service (or out of the candidates); it stays stored."""
        target = self.require(kind, version)
        t = model_artefacts
        with self.engine.begin() as conn:
            conn.execute(
                update(t)
                .where(t.c.org == self.org, t.c.id == target.id)
                .values(status=ArtefactStatus.RETIRED.value)
            )
        return dataclasses.replace(target, status=ArtefactStatus.RETIRED)


def models(store: Store) -> ModelRepository:
    """The model artefacts of the store's organisation."""
    return ModelRepository(store.engine, store.org)


def load_promoted(
    store: Store, kind: str, *, available_features: Collection[str] | None = None
) -> LoadedModel | None:
    """The promoted artefact of ``kind``, loaded; None when none is promoted; ArtefactRefused if unfit."""
    repo = models(store)
    art = repo.promoted(kind)
    if art is None:
        return None
    return load_artefact(art, repo.files(art.id), available_features=available_features)


@dataclass(frozen=True)
class ModelChange:
    """A kind whose promoted model changed: ``loaded`` is the new one, None when none is promoted now."""

    kind: str
    loaded: LoadedModel | None


class ModelWatcher:
    """Picks up promotions without a restart: call :meth:`poll` from the worker loop.

    The first poll loads what is promoted at start. A refused artefact (corrupted, another format
    version, a feature schema that does not fit) is logged in one line and kept in ``refused``; the
    model loaded before stays in ``current`` and in service, and the refused one is not retried until
    another version is promoted. A database that does not answer is logged; nothing changes.
    """

    def __init__(
        self,
        store: Store,
        kinds: Iterable[str],
        *,
        available_features: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        self.store = store
        self.kinds = tuple(kinds)
        self.available_features = dict(available_features or {})
        self.current: dict[str, LoadedModel] = {}
        self.refused: dict[str, str] = {}
        self._seen: dict[str, str | None] = {}

    def poll(self) -> list[ModelChange]:
        """The kinds whose promoted artefact changed since the last poll, with the loaded model."""
        repo = models(self.store)
        try:
            promoted = repo.promoted_ids(self.kinds)
        except SQLAlchemyError as exc:
            log.warning(
                "model watcher: store unavailable, keeping the loaded models (%s)", type(exc).__name__
            )
            return []
        changes: list[ModelChange] = []
        for kind in self.kinds:
            pid = promoted.get(kind)
            if kind in self._seen and self._seen[kind] == pid:
                continue
            self._seen[kind] = pid
            if pid is None:
                self.refused.pop(kind, None)
                if self.current.pop(kind, None) is not None:
                    changes.append(ModelChange(kind, None))
                continue
            loaded = self._load(repo, kind, pid)
            if loaded is not None:
                self.current[kind] = loaded
                self.refused.pop(kind, None)
                changes.append(ModelChange(kind, loaded))
        return changes

    def _load(self, repo: ModelRepository, kind: str, artefact_id: str) -> LoadedModel | None:
        try:
            art = repo.get(artefact_id)
            if art is None:  # retired and replaced between the two queries: look again next poll
                self._seen.pop(kind, None)
                return None
            return load_artefact(
                art, repo.files(art.id), available_features=self.available_features.get(kind)
            )
        except ArtefactRefused as exc:
            message = str(exc)
        except SQLAlchemyError as exc:  # a lost connection: try again on the next poll
            self._seen.pop(kind, None)
            log.warning("model watcher: cannot read %s (%s); will retry", artefact_id, type(exc).__name__)
            return None
        except ValueError as exc:  # stored metadata that no longer parses
            message = f"model artefact {artefact_id} refused: {type(exc).__name__}: {str(exc)[:200]}"
        log.warning(
            "%s; %s", message, "keeping the previous model" if kind in self.current else "none loaded"
        )
        self.refused[kind] = message
        return None
