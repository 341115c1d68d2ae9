"""Helpers for the console's browser tests: the served world, signing in, screenshots for the docs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from healthsec.store import Store

SHOTS = Path(__file__).resolve().parents[3] / "docs" / "console"


@dataclass
class Org:
    org: str
    tokens: dict[str, str]

    def store(self, base: Store) -> Store:
        return base.for_org(self.org)


@dataclass
class ConsoleWorld:
    url: str
    store: Store
    a: Org
    b: Org

    def org_store(self, org: Org) -> Store:
        return self.store.for_org(org.org)


def sign_in(page: object, token: str, *, next_path: str = "/") -> None:
    """Sign in through the form (the way a person does); ends on ``next_path``."""
    page.goto(f"/sign-in?next={next_path}")  # type: ignore[attr-defined]
    page.fill("#token", token)  # type: ignore[attr-defined]
    page.click("form[action='/sign-in'] button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(f"**{next_path}")  # type: ignore[attr-defined]


def shot(page: object, name: str) -> None:
    """A screenshot for docs/console.md (JPEG-sized PNG: the viewport only)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))  # type: ignore[attr-defined]
