"""The path every API request takes: count, delay, authenticate, rate-limit, fault, answer.

    stats -> latency -> auth (401/403) -> rate limit (429 + Retry-After) -> 5xx before apply
          -> handler (applies the change) -> 500 or hang after apply -> JSON answer

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

from syncd.sandbox.faults import AfterCommit, SlidingWindowLimiter, retry_after_header
from syncd.sandbox.wix.auth import Gatekeeper
from syncd.sandbox.wix.errors import WixApiError, invalid
from syncd.sandbox.wix.knobs import WixKnobs
from syncd.sandbox.wix.query import QueryError

Handler = Callable[[Request], Awaitable[Any]]
Endpoint = Callable[[Request], Awaitable[Response]]


class Stats:
    """Counters for the admin `stats` route."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.rate_limited = 0

    def dump(self) -> dict[str, Any]:
        """JSON-ready counters."""
        return {
            "requests": dict(self.requests),
            "statuses": dict(self.statuses),
            "rateLimited": self.rate_limited,
            "faults": dict(self.faults),
        }

    def reset(self) -> None:
        """Zero every counter."""
        self.requests.clear()
        self.statuses.clear()
        self.faults.clear()
        self.rate_limited = 0


async def read_json(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is `{}`; anything else is a 400."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise invalid("body", "is not valid JSON", "FORMAT") from exc
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object", "FORMAT")
    return body


def error_response(error: WixApiError) -> JSONResponse:
    """A Wix error answer."""
    return JSONResponse(error.body(), status_code=error.status)


class Gate:
    """Wraps handlers into endpoints that behave like Wix's front door."""

    def __init__(
        self,
        knobs: WixKnobs,
        gatekeeper: Gatekeeper,
        limiter: SlidingWindowLimiter,
        stats: Stats,
    ) -> None:
        self.knobs = knobs
        self.gatekeeper = gatekeeper
        self.limiter = limiter
        self.stats = stats

    def endpoint(self, name: str, handler: Handler, *, authenticated: bool = True) -> Endpoint:
        """An endpoint for route `name` (e.g. "POST /loyalty-accounts/v1/accounts")."""

        async def endpoint(request: Request) -> Response:
            self.stats.requests[name] += 1
            response = await self._answer(request, handler, authenticated)
            self.stats.statuses[str(response.status_code)] += 1
            return response

        return endpoint

    async def _answer(self, request: Request, handler: Handler, authenticated: bool) -> Response:
        faults = self.knobs.faults
        before = faults.roll_before()
        if before.delay_seconds:
            await anyio.sleep(before.delay_seconds)
        try:
            if authenticated:
                site_id = self.gatekeeper.authenticate(
                    request.headers.get("authorization"), request.headers.get("wix-site-id")
                )
                limited = self._rate_limit(site_id)
                if limited is not None:
                    return limited
            if before.fail:
                self.stats.faults["error_before_apply"] += 1
                return Response(b"", status_code=faults.error_status)
            try:
                body = await handler(request)
            except QueryError as exc:
                raise invalid(exc.field, exc.description, exc.rule) from exc
        except WixApiError as error:
            return error_response(error)
        after = faults.roll_after_commit()
        if after is AfterCommit.FAIL:
            self.stats.faults["fail_after_commit"] += 1
            return Response(b"", status_code=500)
        if after is AfterCommit.HANG:
            self.stats.faults["timeout_after_commit"] += 1
            await anyio.sleep(faults.hang_seconds)
        return JSONResponse(body)

    def _rate_limit(self, site_id: str) -> Response | None:
        self.limiter.requests_per_minute = self.knobs.requests_per_minute
        wait = self.limiter.acquire(site_id)
        if wait is None:
            return None
        self.stats.rate_limited += 1
        headers = {}
        setting = self.knobs.retry_after
        if setting == "computed":
            headers["Retry-After"] = retry_after_header(wait)
        elif isinstance(setting, int):
            headers["Retry-After"] = str(setting)
        error = WixApiError(429, "Too many requests", code="TOO_MANY_REQUESTS")
        return JSONResponse(error.body(), status_code=429, headers=headers)
