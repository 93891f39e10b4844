"""The HubSpot emulator's ASGI app: API and admin routes, seeded correlation ids (header
`X-HubSpot-Correlation-Id`, the same id in error bodies), HubSpot-shaped 404s and 405s.

The app skeleton (request ids, the lifespan that runs the webhook sender) is the shared
`syncd.sandbox.app.build_app`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.types import ASGIApp

from connectors.hubspot.emulator.admin import build_admin_routes
from connectors.hubspot.emulator.errors import HubSpotApiError, correlation_ids
from connectors.hubspot.emulator.routes import build_routes
from syncd.sandbox import app

if TYPE_CHECKING:
    from connectors.hubspot.emulator import HubSpotEmulator

CORRELATION_HEADER = "X-HubSpot-Correlation-Id"


def not_routed(request: Request, status: int, detail: str) -> HubSpotApiError:
    """No such route (404 OBJECT_NOT_FOUND) or method (405), in HubSpot's error body."""
    if status == 404:
        return HubSpotApiError(
            404, "OBJECT_NOT_FOUND", f"No route for {request.method} {request.url.path}."
        )
    if status == 405:
        return HubSpotApiError(
            405, "VALIDATION_ERROR", f"Method {request.method} is not allowed here."
        )
    return HubSpotApiError(status, "INTERNAL_ERROR", "internal error")


def build_app(emulator: HubSpotEmulator) -> ASGIApp:
    """The ASGI app of one emulator (correlation ids come from its seeded sequence)."""
    return app.build_app(
        [*build_routes(emulator.state, emulator.gate), *build_admin_routes(emulator)],
        sender=emulator.webhooks.run,
        not_routed=not_routed,
        request_id_header=CORRELATION_HEADER,
        new_request_id=correlation_ids(emulator.request_ids.uuid),
    )
