"""The console's plumbing: templates, the signed-in viewer with its org-scoped store, CSRF, error pages."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.exc import SQLAlchemyError

from healthsec.services import console_sessions as sessions
from healthsec.services.common import Invalid, NotFound, Refused
from healthsec.store import Store, StoreError
from healthsec.web.nav import NAV

log = logging.getLogger(__name__)

COOKIE = "healthsec_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
_HERE = Path(__file__).parent
STATIC = _HERE / "static"
templates = Environment(
    loader=FileSystemLoader(str(_HERE / "templates" / "console")),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class SignInRequired(Exception):
    """No live session: the page sends the browser to the sign-in form."""


class Forbidden(Exception):
    """Signed in, but this role may not do this, or the form lacked its CSRF token."""


@dataclass(frozen=True, slots=True)
class Console:
    """What a page gets: the viewer, the store scoped to the viewer's organisation, and the settings."""

    viewer: sessions.Viewer
    store: Store
    settings: Any
    request: Request

    def render(self, name: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
        """A page of the console with the layout's context (nav, viewer, CSRF token) filled in."""
        return page(self.request, name, viewer=self.viewer, status_code=status_code, **context)


def policy(settings: Any) -> sessions.SessionPolicy:
    return sessions.SessionPolicy(
        idle=timedelta(minutes=settings.console_idle_minutes),
        max_age=timedelta(hours=settings.console_max_hours),
    )


def page(
    request: Request,
    name: str,
    *,
    viewer: sessions.Viewer | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a template of web/templates/console (autoescaped) into an HTML response."""
    settings = request.app.state.services.settings
    html = templates.get_template(name).render(
        nav=NAV,
        viewer=viewer,
        csrf=viewer.csrf if viewer else "",
        path=request.url.path,
        poll_s=settings.console_poll_s,
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


def _base_store(request: Request) -> Store:
    store: Store = request.app.state.services.store
    return store


def signed_in(request: Request) -> Console:
    """Dependency: the live session's console (else the browser goes to sign-in)."""
    services = request.app.state.services
    viewer = sessions.resume(_base_store(request), request.cookies.get(COOKIE), policy(services.settings))
    if viewer is None:
        raise SignInRequired()
    return Console(viewer, services.store.for_org(viewer.org), services.settings, request)


async def may_change(console: Annotated[Console, Depends(signed_in)]) -> Console:
    """Dependency for every POST: the role may change things and the form carries the session's CSRF token."""
    request = console.request
    presented = request.headers.get(CSRF_HEADER)
    if presented is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not sessions.csrf_matches(console.viewer, presented):
        raise Forbidden("the form was sent without this session's security token; reload the page and retry")
    if not console.viewer.can_change:
        raise Forbidden(f"a {console.viewer.role.value} token may look but not change anything")
    return console


Signed = Annotated[Console, Depends(signed_in)]
Changer = Annotated[Console, Depends(may_change)]


async def form_fields(request: Request) -> dict[str, list[str]]:
    """The posted form as name -> values (repeated names, e.g. checkboxes, keep every value)."""
    form = await request.form()
    out: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            out.setdefault(key, []).append(value)
    return out


def error_page(request: Request, status_code: int, title: str, message: str) -> HTMLResponse:
    """A page for a refusal or fault; the viewer is not looked up again (the database may be away)."""
    return page(request, "error.html", status_code=status_code, title=title, message=message)


def db_down_page(request: Request) -> HTMLResponse:
    return error_page(
        request,
        503,
        "Database unavailable",
        "The console cannot reach its database right now. Nothing was changed. "
        "Reload this page in a moment: it works again as soon as the database answers.",
    )


class ConsoleRoute(APIRoute):
    """Every console route answers with pages: sign-in redirects, 403/404/409/422 and 503 (database down)."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                target = request.url.path if request.method == "GET" else "/"
                return RedirectResponse(f"/sign-in?next={quote(target, safe='/')}", status_code=303)
            except Forbidden as exc:
                return error_page(request, 403, "Not allowed", str(exc))
            except NotFound as exc:
                return error_page(request, 404, "Not found", f"{exc} in your organisation.")
            except Invalid as exc:
                return error_page(request, 422, "Not accepted", "; ".join([str(exc), *exc.problems]))
            except Refused as exc:
                return error_page(request, 409, "Refused", str(exc))
            except (SQLAlchemyError, StoreError) as exc:
                log.warning("console: database unavailable on %s (%s)", request.url.path, type(exc).__name__)
                return db_down_page(request)

        return run


_KB: list[Any] = []


def attack() -> Any:
    """The pinned ATT&CK copy, read once per process (None when it is unavailable; names stay unresolved)."""
    if not _KB:
        from healthsec.services.common import attack_kb

        _KB.append(attack_kb()[0])
    return _KB[0]


def one(fields: dict[str, list[str]], name: str, default: str = "") -> str:
    """The first value of a form field (``default`` when absent)."""
    values = fields.get(name)
    return values[0] if values else default
