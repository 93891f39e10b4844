"""The emulator's ASGI app: API routes, admin routes, request ids, Wix-shaped 404s, lifespan.

Served on a port, the lifespan starts the background webhook sender; in-process
(`httpx.ASGITransport`) there is no lifespan, so tests call `await emulator.webhooks.flush()`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncd.sandbox.wix.admin import build_admin_routes
from syncd.sandbox.wix.routes import build_routes

if TYPE_CHECKING:
    from syncd.sandbox.wix import WixEmulator

REQUEST_ID_HEADER = "x-wix-request-id"


class RequestIdMiddleware:
    """Adds `x-wix-request-id` to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        await self.app(scope, receive, send_with_id)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = "Not found" if status == 404 else str(getattr(exc, "detail", "Error"))
    return JSONResponse({"message": message, "details": {}}, status_code=status)


def build_app(emulator: WixEmulator) -> ASGIApp:
    """The ASGI app of one emulator."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as group:
            group.start_soon(emulator.webhooks.run)
            yield
            group.cancel_scope.cancel()

    routes = build_routes(emulator.state, emulator.gate, emulator.gatekeeper, emulator.knobs)
    app = Starlette(
        routes=[*routes, *build_admin_routes(emulator)],
        lifespan=lifespan,
        exception_handlers={404: _http_error, 405: _http_error},
    )
    return RequestIdMiddleware(app)
