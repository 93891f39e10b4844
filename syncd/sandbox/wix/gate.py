"""Wix's front door, for the shared gate (`syncd.sandbox.gate`): who may call, and how Wix
says no.

    auth          API key + `wix-site-id`, or an OAuth access token (401/403, `auth.Gatekeeper`)
    rate limit    per site: 429 applicationError TOO_MANY_REQUESTS (+ Retry-After per knobs)
    5xx faults    the status with an empty body
    bad JSON      400 validationError on `body` (FORMAT)

Stats name the 429 counter `rateLimited`, in Wix's casing.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from syncd.sandbox.stats import RequestStats
from syncd.sandbox.wire import read_json_object
from syncd.sandbox.wix.auth import Gatekeeper
from syncd.sandbox.wix.errors import WixApiError, invalid


class Stats(RequestStats):
    """Counters for the admin `stats` route, keyed as Wix would."""

    rate_limited_key = "rateLimited"


async def read_json(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is `{}`; anything else is a 400."""
    return await read_json_object(
        request,
        not_json=lambda: invalid("body", "is not valid JSON", "FORMAT"),
        not_object=lambda: invalid("body", "must be a JSON object", "FORMAT"),
    )


class WixFrontDoor:
    """Authenticates with the site's credentials and answers refusals as Wix does."""

    def __init__(self, gatekeeper: Gatekeeper) -> None:
        self.gatekeeper = gatekeeper

    def authenticate(self, request: Request) -> str:
        """The site id the request acts on (the rate limit is per site); 401/403 otherwise."""
        return self.gatekeeper.authenticate(
            request.headers.get("authorization"), request.headers.get("wix-site-id")
        )

    def too_many_requests(self) -> WixApiError:
        """429 with the TOO_MANY_REQUESTS applicationError."""
        return WixApiError(429, "Too many requests", code="TOO_MANY_REQUESTS")

    def server_fault(self, status: int) -> Response:
        """An injected 5xx: the status, an empty body."""
        return Response(b"", status_code=status)
