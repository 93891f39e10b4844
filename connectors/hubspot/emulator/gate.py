"""HubSpot's front door, for the shared gate (`syncd.sandbox.gate`): who may call, HubSpot's
rate limits and their headers, and how HubSpot says no.

    auth          `Authorization: Bearer <private app token>`; 401 INVALID_AUTHENTICATION, or
                  401 EXPIRED_AUTHENTICATION while the `token_expired` knob is on
    rate limits   per portal: `requests_per_ten_seconds` in a rolling 10 s window, `daily_limit`
                  per UTC day, and for search also `search_requests_per_second`; over one:
                  429 {"status": "error", "errorType": "RATE_LIMIT", "policyName": "SECONDLY" |
                  "DAILY", ...} (+ Retry-After per the knobs; none by default)
    headers       every API answer (401 and 429 included) carries X-HubSpot-RateLimit-Max,
                  -Remaining, -Interval-Milliseconds (while the 10 s limit is on), -Daily and
                  -Daily-Remaining (while the daily cap is on)
    5xx faults    `{"status": "error", "category": "INTERNAL_ERROR", ...}`
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import date

from starlette.requests import Request
from starlette.responses import Response

from connectors.hubspot.emulator.errors import HubSpotApiError, rate_limited, server_error
from connectors.hubspot.emulator.knobs import HubSpotKnobs
from syncd.sandbox.faults import SlidingWindowLimiter, retry_after_header
from syncd.sandbox.gate import Endpoint, Gate, Handler
from syncd.sandbox.stats import RequestStats
from syncd.sandbox.wire import Clock

TEN_SECONDS = 10.0
NO_CREDENTIALS = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and "
    "you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


class RollingWindow:
    """Requests counted in a rolling window of `seconds`."""

    def __init__(self, seconds: float, monotonic: Callable[[], float]) -> None:
        self.seconds = seconds
        self.monotonic = monotonic
        self.hits: deque[float] = deque()

    def _trim(self) -> float:
        now = self.monotonic()
        while self.hits and self.hits[0] <= now - self.seconds:
            self.hits.popleft()
        return now

    def acquire(self, limit: int) -> float | None:
        """Count one request; None when allowed (or `limit` is 0), else the seconds until a
        slot frees."""
        if limit <= 0:
            return None
        now = self._trim()
        if len(self.hits) >= limit:
            return self.hits[0] + self.seconds - now
        self.hits.append(now)
        return None

    def remaining(self, limit: int) -> int:
        """Requests left in the window now."""
        self._trim()
        return max(limit - len(self.hits), 0)


class RateLimits:
    """The portal's three limits: 10-second, daily, search per second (refusals counted in
    `stats.rate_limited`)."""

    def __init__(
        self,
        knobs: HubSpotKnobs,
        clock: Clock,
        monotonic: Callable[[], float],
        stats: RequestStats,
    ) -> None:
        self.knobs = knobs
        self.clock = clock
        self.stats = stats
        self.burst = RollingWindow(TEN_SECONDS, monotonic)
        self.search = RollingWindow(1.0, monotonic)
        self.day: date | None = None
        self.used_today = 0

    def reset(self) -> None:
        """Forget every counted request."""
        self.burst.hits.clear()
        self.search.hits.clear()
        self.day, self.used_today = None, 0

    def admit(self, *, search: bool) -> None:
        """Count one request, or raise the 429 of the first limit it is over."""
        knobs = self.knobs
        if search:
            wait = self.search.acquire(knobs.search_requests_per_second)
            if wait is not None:
                raise self._refusal("SECONDLY", "You have reached your secondly limit.", wait)
        wait = self.burst.acquire(knobs.requests_per_ten_seconds)
        if wait is not None:
            raise self._refusal("SECONDLY", "You have reached your secondly limit.", wait)
        self._roll_day()
        if knobs.daily_limit > 0 and self.used_today >= knobs.daily_limit:
            raise self._refusal("DAILY", "You have reached your daily limit.", None)
        self.used_today += 1

    def headers(self) -> dict[str, str]:
        """The rate-limit headers of an answer given now."""
        knobs, headers = self.knobs, {}
        if knobs.requests_per_ten_seconds > 0:
            limit = knobs.requests_per_ten_seconds
            headers["X-HubSpot-RateLimit-Max"] = str(limit)
            headers["X-HubSpot-RateLimit-Remaining"] = str(self.burst.remaining(limit))
            headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(int(TEN_SECONDS * 1000))
        if knobs.daily_limit > 0:
            self._roll_day()
            left = max(knobs.daily_limit - self.used_today, 0)
            headers["X-HubSpot-RateLimit-Daily"] = str(knobs.daily_limit)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(left)
        return headers

    def _roll_day(self) -> None:
        today = self.clock().date()
        if today != self.day:
            self.day, self.used_today = today, 0

    def _refusal(self, policy: str, message: str, wait: float | None) -> HubSpotApiError:
        self.stats.rate_limited += 1
        headers: dict[str, str] = {}
        setting = self.knobs.retry_after
        if setting == "computed" and wait is not None:
            headers["Retry-After"] = retry_after_header(wait)
        elif isinstance(setting, int):
            headers["Retry-After"] = str(setting)
        return rate_limited(policy, message, headers)


class HubSpotFrontDoor:
    """Checks the Bearer token and the rate limits; answers refusals as HubSpot does."""

    def __init__(
        self, knobs: HubSpotKnobs, access_token: Callable[[], str], limits: RateLimits
    ) -> None:
        self.knobs = knobs
        self.access_token = access_token  # read per request: tests may change the token
        self.limits = limits

    def authenticate(self, request: Request) -> str:
        """The portal's rate-limit key, once the token is right and a limit admits the
        request; 401 or 429 otherwise."""
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.access_token():
            raise HubSpotApiError(401, "INVALID_AUTHENTICATION", NO_CREDENTIALS)
        if self.knobs.token_expired:
            raise HubSpotApiError(
                401,
                "EXPIRED_AUTHENTICATION",
                "The OAuth token used to make this call expired 0 second(s) ago.",
            )
        self.limits.admit(search=request.url.path.endswith("/search"))
        return "portal"

    def too_many_requests(self) -> HubSpotApiError:
        """The shared per-minute limiter's 429 (off unless `requests_per_minute` is set)."""
        return rate_limited("SECONDLY", "You have reached your secondly limit.", {})

    def server_fault(self, status: int) -> Response:
        """An injected 5xx in HubSpot's error body."""
        return server_error(status).response()


class HubSpotGate(Gate):
    """The shared gate, adding the rate-limit headers to every API answer."""

    def __init__(
        self,
        knobs: HubSpotKnobs,
        door: HubSpotFrontDoor,
        limiter: SlidingWindowLimiter,
        stats: RequestStats,
    ) -> None:
        super().__init__(knobs, door, limiter, stats)
        self.limits = door.limits

    def endpoint(
        self, name: str, handler: Handler, *, authenticated: bool = True, commits: bool = True
    ) -> Endpoint:
        """The shared endpoint; its answer gets the headers as they stand once it is made."""
        inner = super().endpoint(name, handler, authenticated=authenticated, commits=commits)

        async def endpoint(request: Request) -> Response:
            response = await inner(request)
            response.headers.update(self.limits.headers())
            return response

        return endpoint
