"""The path every API request takes, in every emulator: count, delay, authenticate, rate-limit,
fault, answer.

    stats -> latency -> auth (vendor) -> rate limit (429 + Retry-After) -> 5xx before apply
          -> handler (applies the change) -> 500 or hang after apply -> JSON answer

What differs by vendor comes from its `FrontDoor`: how a caller is authenticated (and which
key the rate limit counts against), the 429 refusal, and the body of an injected 5xx. Admin
routes (`/_sandbox/...`) do not pass through here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.sandbox.errors import ApiError
from syncd.sandbox.faults import (
    AfterCommit,
    RequestFaults,
    SlidingWindowLimiter,
    retry_after_header,
)
from syncd.sandbox.stats import RequestStats

Handler = Callable[[Request], Awaitable[Any]]  # a JSON-ready body (200), or a Response as is
Endpoint = Callable[[Request], Awaitable[Response]]


class GateKnobs(Protocol):
    """The knobs the gate reads (every vendor's knobs have them)."""

    requests_per_minute: int  # per caller key; 0 = no limit
    retry_after: Literal["computed"] | int | None  # 429 header: computed, fixed, or none
    faults: RequestFaults


class FrontDoor(Protocol):
    """What one vendor's front door does its own way."""

    def authenticate(self, request: Request) -> str:
        """The key the rate limit counts against (site, token, ...); raises `ApiError`."""
        ...

    def too_many_requests(self) -> ApiError:
        """The 429 refusal (the gate adds Retry-After as the knobs say)."""
        ...

    def server_fault(self, status: int) -> Response:
        """The answer to an injected 5xx, before or after the change is applied."""
        ...


class Gate:
    """Wraps handlers into endpoints that behave like a vendor's front door."""

    def __init__(
        self,
        knobs: GateKnobs,
        door: FrontDoor,
        limiter: SlidingWindowLimiter,
        stats: RequestStats,
    ) -> None:
        self.knobs = knobs
        self.door = door
        self.limiter = limiter
        self.stats = stats

    def endpoint(
        self, name: str, handler: Handler, *, authenticated: bool = True, commits: bool = True
    ) -> Endpoint:
        """An endpoint for route `name` (e.g. "POST /v2/loyalty/accounts"); with
        `authenticated=False` (a token endpoint) neither auth nor the rate limit applies;
        with `commits=False` (a read) the after-commit faults do not apply."""

        async def endpoint(request: Request) -> Response:
            self.stats.count_request(name, request.headers)
            response = await self._answer(request, handler, authenticated, commits)
            self.stats.count_status(response.status_code)
            return response

        return endpoint

    def route(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        authenticated: bool = True,
        commits: bool | None = None,
    ) -> Route:
        """The API route `method path`, its endpoint named and counted as "METHOD path".
        `commits`: whether it changes anything (default: any method but GET) — only those
        can fail or hang after committing."""
        name = f"{method} {path}"
        endpoint = self.endpoint(
            name,
            handler,
            authenticated=authenticated,
            commits=method != "GET" if commits is None else commits,
        )
        return Route(path, endpoint, methods=[method], name=name)

    async def _answer(
        self, request: Request, handler: Handler, authenticated: bool, commits: bool
    ) -> Response:
        faults = self.knobs.faults
        before = faults.roll_before()
        if before.delay_seconds:
            await anyio.sleep(before.delay_seconds)
        try:
            if authenticated:
                limited = self._rate_limit(self.door.authenticate(request))
                if limited is not None:
                    return limited
            if before.fail:
                self.stats.faults["error_before_apply"] += 1
                return self.door.server_fault(faults.error_status)
            body = await handler(request)
        except ApiError as error:
            return error.response()
        after = faults.roll_after_commit() if commits else None
        if after is AfterCommit.FAIL:
            self.stats.faults["fail_after_commit"] += 1
            return self.door.server_fault(500)
        if after is AfterCommit.HANG:
            self.stats.faults["timeout_after_commit"] += 1
            await anyio.sleep(faults.hang_seconds)
        return body if isinstance(body, Response) else JSONResponse(body)

    def _rate_limit(self, caller: str) -> Response | None:
        self.limiter.requests_per_minute = self.knobs.requests_per_minute
        wait = self.limiter.acquire(caller)
        if wait is None:
            return None
        self.stats.rate_limited += 1
        headers: dict[str, str] = {}
        setting = self.knobs.retry_after
        if setting == "computed":
            headers["Retry-After"] = retry_after_header(wait)
        elif isinstance(setting, int):
            headers["Retry-After"] = str(setting)
        return self.door.too_many_requests().response(headers)
