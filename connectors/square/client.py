"""The Square REST client: Loyalty program, accounts and events, and Customers.

One `SquareClient` per connector. Every call spends a token from the connector's budget, is
mapped into syncd's error tree by `mapping.raise_for_response`, and is retried under the one
bounded policy (`syncd.retry`). Square's writes carry idempotency keys, so a write that timed
out or met a 5xx is sent again with the same key and body (Square answers a repeat with the
first answer, applying nothing twice). If the retries run out while some attempt may have
reached Square, the write raises `OutcomeUnknownError`: the caller reads back.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import RetryCallState

from connectors.square.mapping import Json, raise_for_response
from connectors.square.settings import SquareSettings
from syncd import __version__
from syncd.budget import TokenBucket
from syncd.errors import OutcomeUnknownError, RateLimitedError, RetriableError
from syncd.logs import event, get_logger
from syncd.retry import DEFAULT_RETRY_AFTER, RetryPolicy

log = get_logger(__name__)

PROGRAM = "/v2/loyalty/programs/main"
ACCOUNTS = "/v2/loyalty/accounts"
EVENTS_SEARCH = "/v2/loyalty/events/search"
CUSTOMERS = "/v2/customers"
ACCOUNTS_PAGE = 200  # Search Loyalty Accounts: limit 1..200
EVENTS_PAGE = 30  # Search Loyalty Events: limit 1..30
CUSTOMERS_PAGE = 100  # Search Customers: limit 1..100
BULK_CUSTOMERS = 100  # Bulk Retrieve Customers: at most 100 ids a call
QUERY_IDS = 30  # accounts search: at most 30 phone mappings or customer ids a query
KEY_MAX = 128

# Failures after which the request can not have reached Square: nothing can have been applied.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass
class _Attempts:
    """What the attempts of one call have shown so far."""

    maybe_applied: bool = False


class SquareClient:
    """Async client for one Square seller. Use as `async with SquareClient(settings) as sq:`."""

    def __init__(
        self,
        settings: SquareSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        budget: TokenBucket | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.remote = settings.name
        self.budget = budget or TokenBucket(settings.requests_per_minute)
        self._retry = retry or RetryPolicy()
        self._http = httpx.AsyncClient(
            base_url=settings.base_url,
            timeout=settings.timeout_seconds,
            transport=transport,
            headers={
                "authorization": f"Bearer {settings.access_token.get_secret_value()}",
                "square-version": settings.square_version,
                "user-agent": f"syncd/{__version__}",
            },
        )
        self.calls = 0
        self.rate_limited = 0

    async def __aenter__(self) -> SquareClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- loyalty -------------------------------------------------------------------------------

    async def get_program(self) -> Json:
        """The seller's loyalty program (there is one per seller)."""
        body = await self._call("GET", PROGRAM)
        return dict(body["program"])

    async def search_accounts(
        self, *, query: Json | None = None, cursor: str | None = None, limit: int = ACCOUNTS_PAGE
    ) -> tuple[list[Json], str | None]:
        """One page of loyalty accounts, oldest first, and the cursor of the next page."""
        payload: Json = {"limit": min(limit, ACCOUNTS_PAGE)}
        if query:
            payload["query"] = query
        if cursor:
            payload["cursor"] = cursor
        body = await self._call("POST", f"{ACCOUNTS}/search", json=payload)
        return list(body.get("loyalty_accounts") or []), body.get("cursor") or None

    async def search_all_accounts(self, query: Json) -> list[Json]:
        """Every account matching `query`, every page."""
        found: list[Json] = []
        cursor: str | None = None
        while True:
            page, cursor = await self.search_accounts(query=query, cursor=cursor)
            found += page
            if not cursor:
                return found

    async def get_account(self, account_id: str) -> Json:
        """One loyalty account; NotFoundError if there is none."""
        body = await self._call("GET", f"{ACCOUNTS}/{account_id}", account=account_id)
        return dict(body["loyalty_account"])

    async def create_account(self, *, program_id: str, phone: str, idempotency_key: str) -> Json:
        """A loyalty account mapped to `phone` (Square links or creates the customer)."""
        payload = {
            "loyalty_account": {"program_id": program_id, "mapping": {"phone_number": phone}},
            "idempotency_key": _key(idempotency_key),
        }
        body = await self._call("POST", ACCOUNTS, json=payload, write=True)
        return dict(body["loyalty_account"])

    async def adjust_points(
        self,
        account_id: str,
        *,
        points: int,
        reason: str,
        idempotency_key: str,
        allow_negative_balance: bool = False,
    ) -> Json:
        """Add `points` (may be negative) under `idempotency_key`; returns the LoyaltyEvent."""
        payload = {
            "idempotency_key": _key(idempotency_key),
            "adjust_points": {"points": points, "reason": reason},
            "allow_negative_balance": allow_negative_balance,
        }
        path = f"{ACCOUNTS}/{account_id}/adjust"
        body = await self._call("POST", path, json=payload, account=account_id, write=True)
        return dict(body["event"])

    async def iter_events(self, filter: Json, *, account: str | None = None) -> AsyncIterator[Json]:
        """Every loyalty event matching `filter`, newest first, page by page."""
        cursor: str | None = None
        while True:
            payload: Json = {"query": {"filter": filter}, "limit": EVENTS_PAGE}
            if cursor:
                payload["cursor"] = cursor
            body = await self._call("POST", EVENTS_SEARCH, json=payload, account=account)
            for item in body.get("events") or []:
                yield item
            cursor = body.get("cursor") or None
            if not cursor:
                return

    # -- customers -----------------------------------------------------------------------------

    async def search_customers(self, filter: Json) -> list[Json]:
        """Every customer matching `filter` (search is eventually consistent: seconds)."""
        found: list[Json] = []
        cursor: str | None = None
        while True:
            payload: Json = {"query": {"filter": filter}, "limit": CUSTOMERS_PAGE}
            if cursor:
                payload["cursor"] = cursor
            body = await self._call("POST", f"{CUSTOMERS}/search", json=payload)
            found += body.get("customers") or []
            cursor = body.get("cursor") or None
            if not cursor:
                return found

    async def bulk_retrieve_customers(self, customer_ids: Sequence[str]) -> dict[str, Json]:
        """The customers that exist among `customer_ids`, by id (missing ones are left out)."""
        unique = list(dict.fromkeys(customer_ids))
        found: dict[str, Json] = {}
        for start in range(0, len(unique), BULK_CUSTOMERS):
            chunk = unique[start : start + BULK_CUSTOMERS]
            body = await self._call(
                "POST", f"{CUSTOMERS}/bulk-retrieve", json={"customer_ids": chunk}
            )
            for customer_id, answer in (body.get("responses") or {}).items():
                customer = (answer or {}).get("customer")
                if customer:
                    found[customer_id] = customer
        return found

    async def create_customer(
        self,
        *,
        idempotency_key: str,
        email: str | None,
        phone: str | None,
        given_name: str | None,
        family_name: str | None,
    ) -> Json:
        """A new customer profile, created at most once for `idempotency_key`."""
        fields = {
            "email_address": email,
            "phone_number": phone,
            "given_name": given_name,
            "family_name": family_name,
        }
        payload: Json = {"idempotency_key": _key(idempotency_key)}
        payload |= {k: v for k, v in fields.items() if v}
        body = await self._call("POST", CUSTOMERS, json=payload, write=True)
        return dict(body["customer"])

    # -- the one place requests are made -------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Json | None = None,
        account: str | None = None,
        write: bool = False,
    ) -> Json:
        """Send under the retry policy; a write left unsettled raises OutcomeUnknownError."""
        attempts = _Attempts()
        retrying = self._retry.retrying()
        retrying.before_sleep = _log_retry
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._send(method, path, json, account, attempts)
        except RetriableError as error:
            if not (write and attempts.maybe_applied):
                raise
            raise OutcomeUnknownError(
                f"{method} {path}: {error.message}; it may have been applied: read back",
                remote=self.remote,
                status=error.status,
                code=error.code,
                request_id=error.request_id,
                account=account,
            ) from error
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _send(
        self,
        method: str,
        path: str,
        json: Json | None,
        account: str | None,
        attempts: _Attempts,
    ) -> Json:
        await self.budget.acquire()
        self.calls += 1
        try:
            response = await self._http.request(method, path, json=json)
        except _NOT_SENT as exc:
            raise RetriableError(
                f"cannot reach {self.settings.base_url} ({_reason(exc)}): "
                "check the connector's base_url and the network",
                remote=self.remote,
                account=account,
            ) from exc
        except httpx.TransportError as exc:
            attempts.maybe_applied = True
            raise RetriableError(
                f"{method} {path}: no answer ({_reason(exc)})", remote=self.remote, account=account
            ) from exc
        try:
            raise_for_response(response, remote=self.remote, account=account)
        except RateLimitedError as error:
            self.rate_limited += 1
            wait = error.retry_after if error.retry_after is not None else DEFAULT_RETRY_AFTER
            self.budget.pause(wait)
            raise
        except RetriableError:
            attempts.maybe_applied = True
            raise
        return _json(response, self.remote, account, attempts)


def _json(response: httpx.Response, remote: str, account: str | None, attempts: _Attempts) -> Json:
    if not response.content:
        return {}
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        attempts.maybe_applied = True
        raise RetriableError(
            "answer is not a JSON object",
            remote=remote,
            status=response.status_code,
            account=account,
        )
    return body


def _key(key: str) -> str:
    if not 1 <= len(key) <= KEY_MAX:
        raise ValueError(f"idempotency keys are 1..{KEY_MAX} characters")
    return key


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return (text.split(":")[-1].strip() or type(exc).__name__) if text else type(exc).__name__


def _log_retry(state: RetryCallState) -> None:
    error: Any = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    event(
        log,
        "square.retry",
        level=logging.WARNING,
        attempt=state.attempt_number,
        wait_seconds=round(wait, 2),
        error=str(error),
    )
