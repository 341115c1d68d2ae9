"""Shared fixtures: where the public data sets live, and stores over SQLite and PostgreSQL."""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthsec.store import Store, StoreError

REPO = Path(__file__).resolve().parents[1]
# The federated tests need Flower, whose pins (packaging<26, fastapi<0.139, typer<0.21, ...) cannot share one
# environment with pySigma 2 (packaging>=26.3): `.ci/federated` runs them in a virtual environment of their
# own (`pip install -e '.[federated]'`), and `.ci/run` calls it after the main suite.
collect_ignore = [] if importlib.util.find_spec("flwr") else ["federated"]
SHARED_DATA = Path(os.environ.get("HEALTHSEC_SHARED_DATA", REPO.parent / "shared" / "data"))
PG_URL = os.environ.get("HEALTHSEC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public data sets (../shared/data); CI has them there too, so their absence is an error."""
    assert SHARED_DATA.is_dir(), f"public data sets not found at {SHARED_DATA}"
    return SHARED_DATA


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store on each backend; PostgreSQL data is isolated by a unique organisation id."""
    org = f"t-{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        s = Store.open(str(tmp_path / "test.db"), org)
    else:
        try:
            s = Store.open(PG_URL, org)
        except StoreError as exc:
            pytest.fail(f"PostgreSQL is required for the contract suite: {exc}")
    yield s
    s.close()


@pytest.fixture(autouse=True, scope="session")
def _no_embedded_default_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Commands run without ``--db`` (e.g. ``train``, which registers its model) write to a session
    database, never to the user's embedded default."""
    if "HEALTHSEC_DB" in os.environ:
        yield
        return
    os.environ["HEALTHSEC_DB"] = str(tmp_path_factory.mktemp("default-db") / "healthsec.db")
    try:
        yield
    finally:
        os.environ.pop("HEALTHSEC_DB", None)
