"""The Wix emulator's ASGI app: API and admin routes, `x-wix-request-id`, Wix-shaped 404s.

The app skeleton (request ids, the lifespan that runs the webhook sender) is the shared
`syncd.sandbox.app.build_app`.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.types import ASGIApp

from syncd.sandbox import app
from syncd.sandbox.wix.admin import build_admin_routes
from syncd.sandbox.wix.errors import WixApiError
from syncd.sandbox.wix.routes import build_routes

if TYPE_CHECKING:
    from syncd.sandbox.wix import WixEmulator

REQUEST_ID_HEADER = "x-wix-request-id"


def not_routed(request: Request, status: int, detail: str) -> WixApiError:
    """No such route (404) or method (405): a bare message, empty details."""
    return WixApiError(status, "Not found" if status == 404 else detail)


def build_app(emulator: WixEmulator) -> ASGIApp:
    """The ASGI app of one emulator (request ids are random, as Wix's are)."""
    routes = build_routes(emulator.state, emulator.gate, emulator.gatekeeper, emulator.knobs)
    return app.build_app(
        [*routes, *build_admin_routes(emulator)],
        sender=emulator.webhooks.run,
        not_routed=not_routed,
        request_id_header=REQUEST_ID_HEADER,
        new_request_id=lambda: str(uuid.uuid4()),
    )
