"""The Square emulator's ASGI app: API and admin routes, seeded `x-request-id`s, Square-shaped
404s and 405s.

The app skeleton (request ids, the lifespan that runs the webhook sender) is the shared
`syncd.sandbox.app.build_app`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.types import ASGIApp

from connectors.square.emulator.admin import build_admin_routes
from connectors.square.emulator.errors import SquareApiError
from connectors.square.emulator.routes import build_routes
from syncd.sandbox import app

if TYPE_CHECKING:
    from connectors.square.emulator import SquareEmulator

REQUEST_ID_HEADER = "x-request-id"


def not_routed(request: Request, status: int, detail: str) -> SquareApiError:
    """No such route (404 NOT_FOUND) or method (405 BAD_REQUEST), in Square's error body."""
    if status == 404:
        return SquareApiError(
            404, "NOT_FOUND", f"No route for {request.method} {request.url.path}."
        )
    if status == 405:
        return SquareApiError(405, "BAD_REQUEST", f"Method {request.method} is not allowed here.")
    return SquareApiError(status, "INTERNAL_SERVER_ERROR", "An internal error has occurred.")


def build_app(emulator: SquareEmulator) -> ASGIApp:
    """The ASGI app of one emulator (request ids come from its seeded sequence)."""
    return app.build_app(
        [*build_routes(emulator.state, emulator.gate), *build_admin_routes(emulator)],
        sender=emulator.webhooks.run,
        not_routed=not_routed,
        request_id_header=REQUEST_ID_HEADER,
        new_request_id=emulator.request_ids.uuid,
    )
