"""An emulator's ASGI app: its routes, a request id on every answer, vendor-shaped 404/405s,
and a lifespan that runs the webhook sender.

Served on a port, the lifespan starts the background webhook sender; in-process
(`httpx.ASGITransport`) there is no lifespan, so tests call `await emulator.webhooks.flush()`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncd.sandbox.errors import ApiError

# The vendor's refusal of a request no route takes: (request, status 404/405, detail).
NotRouted = Callable[[Request, int, str], ApiError]


class RequestIdMiddleware:
    """Adds a request id header (`header`, a fresh `new_id()` each time) to every answer."""

    def __init__(self, app: ASGIApp, header: str, new_id: Callable[[], str]) -> None:
        self.app = app
        self.header = header
        self.new_id = new_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self.new_id()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(self.header, request_id)
            await send(message)

        await self.app(scope, receive, send_with_id)


def build_app(
    routes: Sequence[BaseRoute],
    *,
    sender: Callable[[], Coroutine[Any, Any, None]],
    not_routed: NotRouted,
    request_id_header: str,
    new_request_id: Callable[[], str],
) -> ASGIApp:
    """The ASGI app: `routes`, `not_routed` answering 404 and 405, `sender` run while served."""

    async def refuse(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return not_routed(request, status, str(getattr(exc, "detail", "Error"))).response()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as group:
            group.start_soon(sender)
            yield
            group.cancel_scope.cancel()

    app = Starlette(
        routes=list(routes),
        lifespan=lifespan,
        exception_handlers={404: refuse, 405: refuse},
    )
    return RequestIdMiddleware(app, request_id_header, new_request_id)
