"""The path every API request takes: count, delay, authenticate, rate-limit, fault, answer.

    stats -> latency -> Bearer token (401) -> rate limit (429 RATE_LIMITED) -> 5xx before
          apply -> handler (applies the change) -> 500 or hang after apply -> JSON answer

Admin routes (`/_sandbox/...`) do not pass through here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectors.square.emulator.errors import SquareApiError, bad_request, server_error
from connectors.square.emulator.idempotency import IdempotencyStore
from connectors.square.emulator.knobs import SquareKnobs
from connectors.square.emulator.wire import Json
from syncd.sandbox.faults import AfterCommit, SlidingWindowLimiter, retry_after_header

Handler = Callable[[Request], Awaitable[Json]]
Endpoint = Callable[[Request], Awaitable[Response]]


class Stats:
    """Counters for the admin `stats` route."""

    def __init__(self, idempotency: IdempotencyStore) -> None:
        self.idempotency = idempotency
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.versions: Counter[str] = Counter()
        self.rate_limited = 0

    def dump(self) -> Json:
        """JSON-ready counters, with the writes applied and replayed per idempotency key."""
        return {
            "requests": dict(self.requests),
            "statuses": dict(self.statuses),
            "rate_limited": self.rate_limited,
            "faults": dict(self.faults),
            "square_versions": dict(self.versions),
            "applied_writes": dict(self.idempotency.applied),
            "replayed_writes": dict(self.idempotency.replayed),
        }

    def reset(self) -> None:
        """Zero every counter (the idempotency counts are reset with the store)."""
        self.requests.clear()
        self.statuses.clear()
        self.faults.clear()
        self.versions.clear()
        self.rate_limited = 0


async def read_json(request: Request) -> Json:
    """The request body as a JSON object; an empty body is `{}`; anything else is a 400."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise bad_request(
            "The request body is not valid JSON.", code="EXPECTED_JSON_BODY"
        ) from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="EXPECTED_JSON_BODY")
    return body


def error_response(error: SquareApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    """A Square error answer."""
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


class Gate:
    """Wraps handlers into endpoints that behave like Square's front door."""

    def __init__(
        self,
        knobs: SquareKnobs,
        access_token: Callable[[], str],
        limiter: SlidingWindowLimiter,
        stats: Stats,
    ) -> None:
        self.knobs = knobs
        self.access_token = access_token
        self.limiter = limiter
        self.stats = stats

    def endpoint(self, name: str, handler: Handler) -> Endpoint:
        """An endpoint for route `name` (e.g. "POST /v2/loyalty/accounts/{id}/adjust")."""

        async def endpoint(request: Request) -> Response:
            self.stats.requests[name] += 1
            version = request.headers.get("square-version")
            if version:
                self.stats.versions[version] += 1
            response = await self._answer(request, handler)
            self.stats.statuses[str(response.status_code)] += 1
            return response

        return endpoint

    async def _answer(self, request: Request, handler: Handler) -> Response:
        faults = self.knobs.faults
        before = faults.roll_before()
        if before.delay_seconds:
            await anyio.sleep(before.delay_seconds)
        try:
            token = self._authenticate(request.headers.get("authorization"))
            limited = self._rate_limit(token)
            if limited is not None:
                return limited
            if before.fail:
                self.stats.faults["error_before_apply"] += 1
                return error_response(server_error(faults.error_status))
            body = await handler(request)
        except SquareApiError as error:
            return error_response(error)
        after = faults.roll_after_commit()
        if after is AfterCommit.FAIL:
            self.stats.faults["fail_after_commit"] += 1
            return error_response(server_error(500))
        if after is AfterCommit.HANG:
            self.stats.faults["timeout_after_commit"] += 1
            await anyio.sleep(faults.hang_seconds)
        return JSONResponse(body)

    def _authenticate(self, header: str | None) -> str:
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.access_token():
            raise SquareApiError(401, "UNAUTHORIZED", "This request could not be authorized.")
        if self.knobs.token_expired:
            raise SquareApiError(401, "ACCESS_TOKEN_EXPIRED", "The access token has expired.")
        return token.strip()

    def _rate_limit(self, token: str) -> Response | None:
        self.limiter.requests_per_minute = self.knobs.requests_per_minute
        wait = self.limiter.acquire(token)
        if wait is None:
            return None
        self.stats.rate_limited += 1
        headers: dict[str, str] = {}
        setting: Any = self.knobs.retry_after
        if setting == "computed":
            headers["Retry-After"] = retry_after_header(wait)
        elif isinstance(setting, int):
            headers["Retry-After"] = str(setting)
        error = SquareApiError(429, "RATE_LIMITED", "Rate limit exceeded; slow down.")
        return error_response(error, headers)
