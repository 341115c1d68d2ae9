"""ModelWatcher: loads the promoted model at start, picks up a promotion, keeps the old one on refusal."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import update

from healthsec.store import Store
from healthsec.store.models import ModelWatcher, load_promoted, models
from healthsec.store.schema_models import model_files
from healthsec.testing.artefacts import artefact_of, readings


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(str(tmp_path / "w.db"), "north")


def _corrupt(store: Store, artefact_id: str, name: str) -> None:
    t = model_files
    with store.engine.begin() as conn:
        conn.execute(
            update(t)
            .where(t.c.org == store.org, t.c.artefact_id == artefact_id, t.c.name == name)
            .values(data=b"\x00garbage")
        )


def test_poll_follows_promotions(store: Store, telemetry_files: dict[str, bytes]) -> None:
    repo = models(store)
    watcher = ModelWatcher(store, ["telemetry", "flows"])
    assert watcher.poll() == []  # nothing promoted yet
    repo.add(artefact_of("telemetry", telemetry_files), telemetry_files)
    repo.add(artefact_of("telemetry", telemetry_files), telemetry_files)
    assert watcher.poll() == []  # candidates are not in service
    repo.promote("telemetry", 1)
    changes = watcher.poll()
    assert [(c.kind, c.loaded.artefact.id if c.loaded else None) for c in changes] == [
        ("telemetry", "telemetry-v1")
    ]
    rs, _ = readings(8, 3, attack_every=2)
    assert changes[0].loaded is not None and len(changes[0].loaded.model.predict(rs).score) == 8
    assert watcher.poll() == []  # unchanged since the last poll
    repo.promote("telemetry", 2)
    changes = watcher.poll()
    assert [c.loaded.artefact.version for c in changes if c.loaded] == [2]
    assert watcher.current["telemetry"].artefact.version == 2
    repo.retire("telemetry", 2)
    changes = watcher.poll()
    assert [(c.kind, c.loaded) for c in changes] == [("telemetry", None)]
    assert "telemetry" not in watcher.current


def test_refused_promotion_keeps_the_previous_model(
    store: Store, telemetry_files: dict[str, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    repo = models(store)
    repo.add(artefact_of("telemetry", telemetry_files), telemetry_files)
    repo.add(artefact_of("telemetry", telemetry_files), telemetry_files)
    repo.promote("telemetry", 1)
    watcher = ModelWatcher(store, ["telemetry"])
    assert len(watcher.poll()) == 1
    in_service = watcher.current["telemetry"]
    _corrupt(store, "telemetry-v2", "model.txt")
    repo.promote("telemetry", 2)  # promoted behind the service's back (no load check at this level)
    with caplog.at_level(logging.WARNING):
        assert watcher.poll() == []
    assert watcher.current["telemetry"] is in_service
    assert watcher.refused["telemetry"].startswith(
        "model artefact telemetry-v2 (telemetry-classifier) refused"
    )
    assert "does not match its recorded SHA-256" in watcher.refused["telemetry"]
    lines = [r.getMessage() for r in caplog.records if "telemetry-v2" in r.getMessage()]
    assert len(lines) == 1 and "keeping the previous model" in lines[0]
    assert watcher.poll() == []  # the refused one is not retried (nor logged) on every poll
    repo.promote("telemetry", 1)
    changes = watcher.poll()
    assert [c.loaded.artefact.version for c in changes if c.loaded] == [1]
    assert "telemetry" not in watcher.refused


def test_load_promoted(store: Store, telemetry_files: dict[str, bytes]) -> None:
    repo = models(store)
    assert load_promoted(store, "telemetry") is None
    repo.add(artefact_of("telemetry", telemetry_files), telemetry_files)
    repo.promote("telemetry", 1)
    loaded = load_promoted(store, "telemetry")
    assert loaded is not None and loaded.model.features == ["pressure", "rate"]


def test_unreachable_store_keeps_the_loaded_model(
    store: Store, telemetry_files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from healthsec.store.models import ModelRepository

    repo = models(store)
    repo.add(artefact_of("telemetry", telemetry_files), telemetry_files)
    repo.promote("telemetry", 1)
    watcher = ModelWatcher(store, ["telemetry"])
    assert len(watcher.poll()) == 1

    def down(self: ModelRepository, kinds: object = None) -> dict[str, str]:
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(ModelRepository, "promoted_ids", down)
    assert watcher.poll() == []
    assert watcher.current["telemetry"].artefact.version == 1
