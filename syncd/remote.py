"""The one place syncd sends HTTP requests to a remote API (Wix, Square, HubSpot, ...).

`RemoteClient` spends a token of the remote's budget per request, maps every answer through
the API's own `raise_for_response` into syncd's error tree, and retries under the one bounded
policy — but only as far as repeating the request is safe, which the caller states per call:

    READ    repeat freely.
    KEYED   a write the remote dedupes by its idempotency key: repeat with the same key; if the
            retries run out after an attempt that may have reached the remote, the outcome is
            unknown (OutcomeUnknownError: read back).
    ONCE    a write the remote does not dedupe (Wix Adjust Points): repeat only what provably
            never left (connection refused, 429); any other failure is an unknown outcome at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import enum
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

import certifi
import httpx
from tenacity import RetryCallState

from syncd import __version__
from syncd.budget import TokenBucket
from syncd.errors import OutcomeUnknownError, RateLimitedError, RetriableError
from syncd.logs import event, get_logger
from syncd.retry import DEFAULT_RETRY_AFTER, RetryPolicy

log = get_logger(__name__)
Json = dict[str, Any]
ResponseCheck = Callable[[httpx.Response, str | None], None]
"""`raise_for_response(response, account)`: returns on success, raises the mapped error."""

LANES = 16  # requests in flight to one remote at most (see `RemoteClient._lane`)

# Failures after which the request cannot have reached the remote: nothing was applied.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class Safety(enum.Enum):
    READ = "read"
    KEYED = "keyed"
    ONCE = "once"


@dataclass
class _Attempts:
    maybe_applied: bool = False


class RemoteClient:
    """An API's HTTP client with budget, error mapping and retries; subclassed per API."""

    def __init__(
        self,
        *,
        remote: str,
        base_url: str,
        config_key: str,
        check: ResponseCheck,
        timeout: float,
        budget: TokenBucket,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.remote = remote
        self.base_url = base_url
        self.budget = budget
        self._config_key = config_key
        self._check = check
        self._retry = retry or RetryPolicy()
        self._client_options: dict[str, Any] = {
            "base_url": base_url,
            "timeout": timeout,
            "transport": transport,
            "auth": auth,
            "headers": {"user-agent": f"syncd/{__version__}", **(headers or {})},
            "limits": httpx.Limits(max_connections=1, max_keepalive_connections=1),
        }
        self._tls: ssl.SSLContext | None = None
        self._lanes: asyncio.LifoQueue[httpx.AsyncClient | None] = asyncio.LifoQueue()
        for _ in range(LANES):
            self._lanes.put_nowait(None)  # a lane opens its client when first needed
        self._clients: list[httpx.AsyncClient] = []
        self.calls = 0
        self.rate_limited = 0

    @property
    def auth(self) -> httpx.Auth | None:
        """The request signer every lane shares (e.g. Wix's token cache)."""
        auth: httpx.Auth | None = self._client_options["auth"]
        return auth

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

    @contextlib.asynccontextmanager
    async def _lane(self) -> AsyncIterator[httpx.AsyncClient]:
        """One of the `LANES` clients, each a single keep-alive connection, for one request.

        Lanes rather than one client with a pool of connections: httpcore's pool re-examines
        every connection (and polls each idle socket) whenever a request starts or ends, and
        hands one idle connection to several waiting requests, all but one of which go round
        again. With a dozen requests in flight that bookkeeping was a third of a backfill's
        CPU; a lane's pool has one connection and one request.
        """
        client = await self._lanes.get()
        try:
            if client is None:
                if self._tls is None:
                    self._tls = ssl.create_default_context(cafile=certifi.where())
                client = httpx.AsyncClient(verify=self._tls, **self._client_options)
                self._clients.append(client)
            yield client
        finally:
            self._lanes.put_nowait(client)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Json | None = None,
        params: Mapping[str, str] | None = None,
        account: str | None = None,
        safety: Safety = Safety.READ,
    ) -> Json:
        """Send one request under the retry policy; the answer's JSON object."""
        attempts = _Attempts()
        retrying = self._retry.retrying()
        retrying.before_sleep = self._log_retry
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._send(method, path, json, params, account, safety, attempts)
        except RetriableError as error:
            if not (safety is Safety.KEYED and attempts.maybe_applied):
                raise
            raise self._unknown(f"{method} {path}: {error.message}", error, account) from error
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _send(
        self,
        method: str,
        path: str,
        json: Json | None,
        params: Mapping[str, str] | None,
        account: str | None,
        safety: Safety,
        attempts: _Attempts,
    ) -> Json:
        await self.budget.acquire()
        self.calls += 1
        where = f"{method} {path}"
        try:
            async with self._lane() as http:
                response = await http.request(method, path, json=json, params=params)
        except _NOT_SENT as exc:
            raise RetriableError(
                f"cannot reach {self.base_url} ({_reason(exc)}): "
                f"check {self._config_key}.base_url and the network",
                remote=self.remote,
                account=account,
            ) from exc
        except httpx.TransportError as exc:
            lost = RetriableError(f"{where}: no answer ({_reason(exc)})", remote=self.remote)
            return self._maybe_applied(lost, safety, attempts, account)
        try:
            self._check(response, account)
        except RateLimitedError as error:
            self.rate_limited += 1
            wait = error.retry_after if error.retry_after is not None else DEFAULT_RETRY_AFTER
            self.budget.pause(wait)
            raise
        except RetriableError as error:
            return self._maybe_applied(error, safety, attempts, account)
        return self._json(response, where, safety, attempts, account)

    def _maybe_applied(
        self, error: RetriableError, safety: Safety, attempts: _Attempts, account: str | None
    ) -> Json:
        """A failure after the request may have reached the remote."""
        if safety is Safety.ONCE:
            raise self._unknown(error.message, error, account) from error
        attempts.maybe_applied = True
        raise error

    def _json(
        self,
        response: httpx.Response,
        where: str,
        safety: Safety,
        attempts: _Attempts,
        account: str | None,
    ) -> Json:
        if not response.content:
            return {}
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            return body
        garbled = RetriableError(
            f"{where}: answer is not a JSON object",
            remote=self.remote,
            status=response.status_code,
            account=account,
        )
        return self._maybe_applied(garbled, safety, attempts, account)

    def _unknown(
        self, message: str, cause: RetriableError, account: str | None
    ) -> OutcomeUnknownError:
        return OutcomeUnknownError(
            f"{message}; it may have been applied: read back",
            remote=self.remote,
            status=cause.status,
            code=cause.code,
            request_id=cause.request_id,
            account=account,
        )

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        event(
            log,
            f"{self.remote}.retry",
            level=logging.WARNING,
            attempt=state.attempt_number,
            wait_seconds=round(wait, 2),
            error=str(error),
        )


def retry_after(response: httpx.Response, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), if present."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, moment - (time.time() if now is None else now))


def request_id(response: httpx.Response, headers: tuple[str, ...]) -> str | None:
    """The remote's id for this request, from the first of `headers` it sent."""
    return next((response.headers[h] for h in headers if h in response.headers), None)


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return (text.split(":")[-1].strip() or type(exc).__name__) if text else type(exc).__name__
