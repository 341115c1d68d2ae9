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
    """A screenshot of the viewport for docs/console.md, as a small palette PNG."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))  # type: ignore[attr-defined]
    from PIL import Image  # 64 colours are plenty for a page of text: about a third of the bytes

    Image.open(path).convert("RGB").quantize(colors=64).save(path, optimize=True)
