"""Square's front door, for the shared gate (`syncd.sandbox.gate`): who may call, and how
Square says no.

    auth          `Authorization: Bearer <access token>` (401 UNAUTHORIZED), or 401
                  ACCESS_TOKEN_EXPIRED while the `token_expired` knob is on
    rate limit    per access token: 429 RATE_LIMITED (+ Retry-After per knobs; none by default)
    5xx faults    Square's API_ERROR body (SERVICE_UNAVAILABLE, INTERNAL_SERVER_ERROR, ...)
    bad JSON      400 EXPECTED_JSON_BODY

Stats also count the `Square-Version` header values seen and, from the idempotency store, the
writes each key applied and replayed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response

from connectors.square.emulator.errors import SquareApiError, bad_request, server_error
from connectors.square.emulator.idempotency import IdempotencyStore
from connectors.square.emulator.knobs import SquareKnobs
from connectors.square.emulator.wire import Json
from syncd.sandbox.stats import RequestStats
from syncd.sandbox.wire import read_json_object


class Stats(RequestStats):
    """Counters for the admin `stats` route, with Square-Version values and idempotent writes."""

    def __init__(self, idempotency: IdempotencyStore) -> None:
        super().__init__()
        self.idempotency = idempotency
        self.versions: Counter[str] = Counter()

    def count_request(self, name: str, headers: Mapping[str, str]) -> None:
        """One request to route `name`, and the Square-Version it asked for (if any)."""
        super().count_request(name, headers)
        version = headers.get("square-version")
        if version:
            self.versions[version] += 1

    def dump(self) -> Json:
        """JSON-ready counters, with the writes applied and replayed per idempotency key."""
        return super().dump() | {
            "square_versions": dict(self.versions),
            "applied_writes": dict(self.idempotency.applied),
            "replayed_writes": dict(self.idempotency.replayed),
        }

    def reset(self) -> None:
        """Zero every counter (the idempotency counts are reset with the store)."""
        super().reset()
        self.versions.clear()


async def read_json(request: Request) -> Json:
    """The request body as a JSON object; an empty body is `{}`; anything else is a 400."""
    return await read_json_object(
        request,
        not_json=lambda: bad_request(
            "The request body is not valid JSON.", code="EXPECTED_JSON_BODY"
        ),
        not_object=lambda: bad_request(
            "The request body must be a JSON object.", code="EXPECTED_JSON_BODY"
        ),
    )


class SquareFrontDoor:
    """Checks the Bearer token and answers refusals as Square does."""

    def __init__(self, knobs: SquareKnobs, access_token: Callable[[], str]) -> None:
        self.knobs = knobs
        self.access_token = access_token  # read per request: tests may change the token

    def authenticate(self, request: Request) -> str:
        """The access token (the rate limit is per token); 401 otherwise."""
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.access_token():
            raise SquareApiError(401, "UNAUTHORIZED", "This request could not be authorized.")
        if self.knobs.token_expired:
            raise SquareApiError(401, "ACCESS_TOKEN_EXPIRED", "The access token has expired.")
        return token.strip()

    def too_many_requests(self) -> SquareApiError:
        """429 RATE_LIMITED (RATE_LIMIT_ERROR)."""
        return SquareApiError(429, "RATE_LIMITED", "Rate limit exceeded; slow down.")

    def server_fault(self, status: int) -> Response:
        """An injected 5xx with Square's API_ERROR body."""
        return server_error(status).response()
