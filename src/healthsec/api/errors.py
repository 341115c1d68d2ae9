"""How a use case's refusal reaches an HTTP client: not found 404, invalid 422, refused 409."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import HTTPException, status

from healthsec.services.common import Invalid, NotFound, Refused

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Not found in your organisation"}}
REFUSED: dict[int | str, dict[str, Any]] = {
    409: {"description": "Well formed, but refused (the reason says why)"}
}


@contextmanager
def answering() -> Iterator[None]:
    """Run a use case inside a route; its refusals become the documented HTTP errors."""
    try:
        yield
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{exc} in your organisation") from None
    except Invalid as exc:
        loc: list[str | int] = ["body", *exc.loc] if exc.loc else ["request"]
        detail = [{"loc": loc, "msg": str(exc), "type": "value_error"}]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail) from None
    except Refused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
