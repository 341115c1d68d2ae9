"""Pages of the navigation bar that are not built yet: each says so plainly (replace it by its own module)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from healthsec.web.core import ConsoleRoute, Signed
from healthsec.web.nav import NAV

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

# Remove a key here when its page module exists (and is listed in web/__init__.py PAGES).
NOT_BUILT: tuple[str, ...] = ("alerts",)


def _placeholder(key: str, label: str) -> object:
    def show(console: Signed) -> HTMLResponse:
        return console.render("not_built.html", active=key, title=label)

    show.__name__ = f"not_built_{key}"
    return show


for _item in NAV:
    if _item.key in NOT_BUILT:
        router.add_api_route(_item.href, _placeholder(_item.key, _item.label), methods=["GET"])  # type: ignore[arg-type]
