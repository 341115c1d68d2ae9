"""The Intel page (served app over SQLite, no browser) tags a report's text with the trained tagger
(nothing stored), says so when none is trained, refuses empty text, and refuses the read-only role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from healthsec.analyze.text_attack import fit_tagger
from healthsec.api import create_app
from healthsec.config import load_settings
from healthsec.services.intel_text import save_tagger
from healthsec.store import Store
from healthsec.store.auth import AuthStore

TEXT = "Operators ran cmd.exe to execute a script. The ransomware encrypted all files. The sky was blue."


def _client(tmp_path: Path, tagger_dir: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    db = str(tmp_path / "hs.db")
    store = Store.open(db, "north")
    auth = AuthStore(store.engine)
    auth.create_org("north")
    tokens = {r: auth.create_token("north", r, r)[1] for r in ("analyst", "auditor")}
    settings = load_settings(db=db, org="north", detectors_disabled=("sigma",), intel_tagger_dir=tagger_dir)
    with TestClient(create_app(settings, store=store)) as c:
        yield c, tokens
    store.close()


def _sign_in(c: TestClient, token: str) -> str:
    c.cookies.clear()
    pre = re.search(r'name="csrf" value="([^"]+)"', c.get("/sign-in").text)
    assert pre
    r = c.post(
        "/sign-in", data={"csrf": pre.group(1), "token": token, "next": "/intel"}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', c.get("/intel").text)
    assert csrf
    return csrf.group(1)


@pytest.fixture
def trained(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    sents = [
        "They ran cmd.exe to execute scripts.",
        "The ransomware encrypted all files.",
        "The sky was blue.",
    ]
    labels = [["T1059.003"], ["T1486"], []]
    save_tagger(fit_tagger(sents * 4, labels * 4, ["T1059.003", "T1486"], min_df=1, c=10.0), tmp_path / "m")
    yield from _client(tmp_path, tmp_path / "m")


def test_tagging_a_report(trained: tuple[TestClient, dict[str, str]]) -> None:
    c, tokens = trained
    csrf = _sign_in(c, tokens["analyst"])
    r = c.post("/intel/tag", data={"csrf": csrf, "text": TEXT})
    assert r.status_code == 200
    tags = r.text[r.text.index('<ol id="tags">') :]
    assert "T1059.003" in tags and "T1486" in tags and "cmd.exe" in tags
    r = c.post("/intel/tag", data={"csrf": csrf, "text": "   "})
    assert r.status_code == 422 and "the field &#39;text&#39; is required" in r.text
    assert c.post("/intel/tag", data={"text": TEXT}).status_code == 403  # no CSRF token
    csrf = _sign_in(c, tokens["auditor"])
    r = c.post("/intel/tag", data={"csrf": csrf, "text": TEXT})
    assert r.status_code == 403 and "may look but not change" in r.text


def test_without_a_trained_tagger_the_page_says_so(tmp_path: Path) -> None:
    for c, tokens in _client(tmp_path, tmp_path / "none"):
        csrf = _sign_in(c, tokens["analyst"])
        r = c.post("/intel/tag", data={"csrf": csrf, "text": TEXT})
        assert r.status_code == 200 and "no trained tagger in" in r.text and '<ol id="tags">' not in r.text
