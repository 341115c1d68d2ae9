"""Hostile HTTP clients for the hardening tests: chunked bodies without a Content-Length, and an ASGI
wrapper that counts the body bytes an application actually took (issue 18 part 2 item 1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

MB = 1024 * 1024


class Consumed:
    """Outermost ASGI wrapper: counts the body bytes the application took from the server."""

    def __init__(self, app: Any) -> None:
        self.app, self.bytes = app, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def counted() -> Any:
            message = await receive()
            self.bytes += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


def chunked_send(
    method: str, url: str, headers: dict[str, str], total: int, **kw: Any
) -> tuple[int | None, int]:
    """Send ``total`` bytes with chunked framing (a generator, no Content-Length); return (status or None
    when the server closed the connection first, bytes the client produced)."""
    import httpx

    produced = 0

    def body() -> Iterator[bytes]:
        nonlocal produced
        chunk = b"[" * MB
        while produced < total:
            produced += len(chunk)
            yield chunk

    try:
        response = httpx.request(method, url, content=body(), headers=headers, timeout=30, **kw)
    except httpx.TransportError:  # the server answered and closed while we were still sending
        return None, produced
    return response.status_code, produced
