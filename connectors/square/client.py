"""The Square REST client: Loyalty program, accounts and events, and Customers.

One `SquareClient` per connector. Every call spends a token from the connector's budget, is
mapped into syncd's error tree by `mapping.raise_for_response`, and is retried under the one
bounded policy (`syncd.retry`). Square's writes carry idempotency keys, so a write that timed
out or met a 5xx is sent again with the same key and body (Square answers a repeat with the
first answer, applying nothing twice). If the retries run out while some attempt may have
reached Square, the write raises `OutcomeUnknownError`: the caller reads back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import httpx

from connectors.square.mapping import Json, raise_for_response
from connectors.square.settings import SquareSettings
from syncd.budget import TokenBucket
from syncd.remote import RemoteClient, Safety
from syncd.retry import RetryPolicy

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


class SquareClient(RemoteClient):
    """Async client for one Square seller. Use as `async with SquareClient(settings) as sq:`."""

    def __init__(
        self,
        settings: SquareSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        budget: TokenBucket | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(
            remote=settings.name,
            base_url=settings.base_url,
            config_key=f"connectors.{settings.name}",
            check=lambda response, account: raise_for_response(
                response, remote=settings.name, account=account
            ),
            timeout=settings.timeout_seconds,
            budget=budget or TokenBucket(settings.requests_per_minute),
            retry=retry,
            transport=transport,
            headers={
                "authorization": f"Bearer {settings.access_token.get_secret_value()}",
                "square-version": settings.square_version,
            },
        )
        self.settings = settings

    # -- loyalty -------------------------------------------------------------------------------

    async def get_program(self) -> Json:
        """The seller's loyalty program (there is one per seller)."""
        body = await self.call("GET", PROGRAM)
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
        body = await self.call("POST", f"{ACCOUNTS}/search", json=payload)
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
        body = await self.call("GET", f"{ACCOUNTS}/{account_id}", account=account_id)
        return dict(body["loyalty_account"])

    async def create_account(self, *, program_id: str, phone: str, idempotency_key: str) -> Json:
        """A loyalty account mapped to `phone` (Square links or creates the customer)."""
        payload = {
            "loyalty_account": {"program_id": program_id, "mapping": {"phone_number": phone}},
            "idempotency_key": _key(idempotency_key),
        }
        body = await self.call("POST", ACCOUNTS, json=payload, safety=Safety.KEYED)
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
        body = await self.call("POST", path, json=payload, account=account_id, safety=Safety.KEYED)
        return dict(body["event"])

    async def iter_events(self, filter: Json, *, account: str | None = None) -> AsyncIterator[Json]:
        """Every loyalty event matching `filter`, newest first, page by page."""
        cursor: str | None = None
        while True:
            payload: Json = {"query": {"filter": filter}, "limit": EVENTS_PAGE}
            if cursor:
                payload["cursor"] = cursor
            body = await self.call("POST", EVENTS_SEARCH, json=payload, account=account)
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
            body = await self.call("POST", f"{CUSTOMERS}/search", json=payload)
            found += body.get("customers") or []
            cursor = body.get("cursor") or None
            if not cursor:
                return found

    async def bulk_retrieve_customers(self, customer_ids: Sequence[str]) -> dict[str, Json]:
        """The customers that exist among `customer_ids`, by id (missing ones are left out)."""
        unique = list(dict.fromkeys(customer_ids))
        found: dict[str, Json] = {}
        bodies = await asyncio.gather(  # a page of 200 accounts is two calls: at once
            *(
                self.call(
                    "POST",
                    f"{CUSTOMERS}/bulk-retrieve",
                    json={"customer_ids": unique[start : start + BULK_CUSTOMERS]},
                )
                for start in range(0, len(unique), BULK_CUSTOMERS)
            )
        )
        for body in bodies:
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
        body = await self.call("POST", CUSTOMERS, json=payload, safety=Safety.KEYED)
        return dict(body["customer"])


def _key(key: str) -> str:
    if not 1 <= len(key) <= KEY_MAX:
        raise ValueError(f"idempotency keys are 1..{KEY_MAX} characters")
    return key
