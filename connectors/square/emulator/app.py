"""The emulator's ASGI app: API routes, admin routes, request ids, Square-shaped 404s, lifespan.

Served on a port, the lifespan starts the background webhook sender; in-process
(`httpx.ASGITransport`) there is no lifespan, so tests call `await emulator.webhooks.flush()`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.square.emulator.admin import build_admin_routes
from connectors.square.emulator.errors import SquareApiError
from connectors.square.emulator.routes import build_routes

if TYPE_CHECKING:
    from connectors.square.emulator import SquareEmulator

REQUEST_ID_HEADER = "x-request-id"


class RequestIdMiddleware:
    """Adds `x-request-id` to every answer."""

    def __init__(self, app: ASGIApp, new_id: Callable[[], str]) -> None:
        self.app = app
        self.new_id = new_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self.new_id()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        await self.app(scope, receive, send_with_id)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        error = SquareApiError(
            404, "NOT_FOUND", f"No route for {request.method} {request.url.path}."
        )
    elif status == 405:
        error = SquareApiError(405, "BAD_REQUEST", f"Method {request.method} is not allowed here.")
    else:
        error = SquareApiError(status, "INTERNAL_SERVER_ERROR", "An internal error has occurred.")
    return JSONResponse(error.body(), status_code=status)


def build_app(emulator: SquareEmulator) -> ASGIApp:
    """The ASGI app of one emulator."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as group:
            group.start_soon(emulator.webhooks.run)
            yield
            group.cancel_scope.cancel()

    app = Starlette(
        routes=[*build_routes(emulator.state, emulator.gate), *build_admin_routes(emulator)],
        lifespan=lifespan,
        exception_handlers={404: _http_error, 405: _http_error},
    )
    return RequestIdMiddleware(app, emulator.request_ids.uuid)
