"""The Wix REST client: Loyalty accounts, transactions and program, and Contacts.

One `WixClient` per site, on `syncd.remote.RemoteClient`: every call spends a token from the
site's shared budget, is mapped into syncd's error tree by `syncd.wix.errors`, and is retried
as far as that is safe. Adjust Points is not idempotent at Wix, so it is sent `Safety.ONCE`:
an answer that leaves its effect unknown raises `OutcomeUnknownError` and the caller reads back
(transactions by tag). Creating contacts and accounts is safe to repeat (duplicates are found).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from syncd.budget import TokenBucket
from syncd.errors import ConflictError, DuplicateError, NotFoundError
from syncd.remote import Json, RemoteClient, Safety
from syncd.retry import RetryPolicy
from syncd.settings import WixSettings
from syncd.wix.auth import make_auth
from syncd.wix.errors import REMOTE, raise_for_response
from syncd.wix.models import Account, Contact, Page, PointsChange, Program, Transaction

ACCOUNTS = "/loyalty-accounts/v1/accounts"
TRANSACTIONS = "/loyalty-transactions/v1/loyalty-transactions"
PROGRAM = "/loyalty-programs/v1/program"
CONTACTS = "/contacts/v4/contacts"
MAX_PAGE = 100
OLDEST_FIRST = [{"fieldName": "createdDate", "order": "ASC"}]
DESCRIPTION_MAX = 100


class WixClient(RemoteClient):
    """Async client for one Wix site. Use as `async with WixClient(settings) as wix: ...`."""

    def __init__(
        self,
        settings: WixSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        budget: TokenBucket | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(
            remote=REMOTE,
            base_url=settings.base_url,
            config_key="wix",
            check=lambda response, account: raise_for_response(response, account=account),
            timeout=settings.timeout_seconds,
            budget=budget or TokenBucket(settings.requests_per_minute),
            retry=retry,
            transport=transport,
            auth=make_auth(settings),
        )
        self.settings = settings

    # -- program -------------------------------------------------------------------------------

    async def get_program(self) -> Program:
        """The site's loyalty program (status DRAFT, ACTIVE or PAUSED)."""
        body = await self.call("GET", PROGRAM)
        return Program.from_wire(body.get("loyaltyProgram") or {})

    # -- accounts ------------------------------------------------------------------------------

    async def get_account(self, account_id: str) -> Account:
        """One account by id; NotFoundError if there is none."""
        body = await self.call("GET", f"{ACCOUNTS}/{account_id}", account=account_id)
        return Account.from_wire(body["account"])

    async def get_account_by_contact(self, contact_id: str) -> Account | None:
        """The account of a contact, or None when the contact has none."""
        try:
            body = await self.call("GET", f"{ACCOUNTS}/fetch-by", params={"contactId": contact_id})
        except NotFoundError:
            return None
        return Account.from_wire(body["account"])

    async def query_accounts(
        self,
        *,
        cursor: str | None = None,
        filter: Mapping[str, Any] | None = None,
        limit: int = MAX_PAGE,
    ) -> Page[Account]:
        """One page of accounts, oldest first; pass the returned cursor for the next page."""
        query = _paged_query(cursor, filter, limit, sort=OLDEST_FIRST)
        body = await self.call("POST", f"{ACCOUNTS}/query", json={"query": query})
        raw = body.get("loyaltyAccounts", body.get("accounts")) or []
        return _page(body, [Account.from_wire(item) for item in raw])

    async def iter_accounts(
        self, *, cursor: str | None = None, filter: Mapping[str, Any] | None = None
    ) -> AsyncIterator[Page[Account]]:
        """Every page of accounts from `cursor` (or the start) to the end."""
        while True:
            page = await self.query_accounts(cursor=cursor, filter=filter)
            yield page
            if not (page.has_next and page.cursor):
                return
            cursor = page.cursor

    async def find_accounts_by_email(self, email: str) -> list[Account]:
        """Accounts whose contact has this email (Search Accounts; normally zero or one)."""
        search = {
            "filter": {"contact.email": {"$eq": email}},
            "cursorPaging": {"limit": MAX_PAGE},
        }
        body = await self.call("POST", f"{ACCOUNTS}/search", json={"search": search})
        raw = body.get("accounts", body.get("loyaltyAccounts")) or []
        return [Account.from_wire(item) for item in raw]

    async def count_accounts(self, filter: Mapping[str, Any] | None = None) -> int:
        body = await self.call("POST", f"{ACCOUNTS}/count", json={"filter": dict(filter or {})})
        return int(body.get("count", 0))

    async def ensure_account(self, contact_id: str) -> tuple[Account, bool]:
        """The contact's account, created if missing; True when this call created it.

        One account per contact makes creation safe to repeat: a second create answers 409 and
        the existing account is fetched instead.
        """
        try:
            body = await self.call("POST", ACCOUNTS, json={"contactId": contact_id})
        except (ConflictError, DuplicateError):
            existing = await self.get_account_by_contact(contact_id)
            if existing is None:
                raise
            return existing, False
        return Account.from_wire(body["account"]), True

    async def adjust_points(
        self, account_id: str, *, amount: int, revision: int, description: str
    ) -> PointsChange:
        """Add `amount` (may be negative) at `revision`; the one write syncd makes to Wix.

        ConflictError: the account changed since `revision` was read (re-read, re-plan).
        OutcomeUnknownError: the change may have been applied (read back before anything else).
        """
        if amount == 0:
            raise ValueError("adjust_points needs a non-zero amount")
        if not 1 <= len(description) <= DESCRIPTION_MAX:
            raise ValueError(f"description must be 1..{DESCRIPTION_MAX} characters")
        body = await self.call(
            "POST",
            f"{ACCOUNTS}/{account_id}/adjust-points",
            json={"amount": amount, "revision": str(revision), "description": description},
            account=account_id,
            safety=Safety.ONCE,
        )
        return PointsChange(Account.from_wire(body["account"]), body.get("transactionId"))

    async def earn_points(
        self,
        account_id: str,
        *,
        amount: int,
        idempotency_key: str,
        app_id: str,
        description: str | None = None,
    ) -> PointsChange:
        """Add positive points under an idempotency key: repeating the call changes nothing."""
        payload: Json = {"amount": amount, "appId": app_id, "idempotencyKey": idempotency_key}
        if description:
            payload["description"] = description
        body = await self.call(
            "POST", f"{ACCOUNTS}/{account_id}/earn-points", json=payload, account=account_id
        )
        return PointsChange(Account.from_wire(body["account"]), body.get("transactionId"))

    # -- transactions --------------------------------------------------------------------------

    async def query_transactions(
        self,
        *,
        cursor: str | None = None,
        filter: Mapping[str, Any] | None = None,
        limit: int = MAX_PAGE,
    ) -> Page[Transaction]:
        """One page of ledger entries, oldest first."""
        query = _paged_query(cursor, filter, limit, sort=OLDEST_FIRST)
        body = await self.call("POST", f"{TRANSACTIONS}/query", json={"query": query})
        raw = body.get("loyaltyTransactions") or []
        return _page(body, [Transaction.from_wire(item) for item in raw])

    async def iter_transactions(
        self, *, filter: Mapping[str, Any] | None = None
    ) -> AsyncIterator[Transaction]:
        """Every ledger entry matching `filter`, oldest first."""
        cursor: str | None = None
        while True:
            page = await self.query_transactions(cursor=cursor, filter=filter)
            for item in page.items:
                yield item
            if not (page.has_next and page.cursor):
                return
            cursor = page.cursor

    async def find_tagged_transaction(
        self, account_id: str, marker: str, *, since: datetime
    ) -> Transaction | None:
        """The account's ledger entry whose description starts with `marker` (syncd's
        operation tag), looking no earlier than `since`: the read-back after an unknown
        outcome."""
        window = {"accountId": account_id, "createdDate": {"$gte": _wire_time(since)}}
        async for entry in self.iter_transactions(filter=window):
            if (entry.description or "").startswith(marker):
                return entry
        return None

    # -- contacts ------------------------------------------------------------------------------

    async def create_contact(
        self,
        *,
        email: str | None = None,
        phone: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
    ) -> tuple[str, bool]:
        """A contact id for this person: a new contact, or the existing one Wix names as a
        duplicate of it (DUPLICATE_CONTACT_EXISTS). True when this call created it."""
        info: Json = {}
        if first_name or last_name:
            info["name"] = {k: v for k, v in (("first", first_name), ("last", last_name)) if v}
        if email:
            info["emails"] = {"items": [{"email": email}]}
        if phone:
            info["phones"] = {"items": [{"phone": phone}]}
        try:
            body = await self.call("POST", CONTACTS, json={"info": info, "allowDuplicates": False})
        except DuplicateError as error:
            if not error.existing_id:
                raise
            return error.existing_id, False
        return str(body["contact"]["id"]), True

    async def get_contact(self, contact_id: str) -> Contact:
        body = await self.call("GET", f"{CONTACTS}/{contact_id}")
        return Contact.from_wire(body["contact"])

    async def query_contacts(
        self, *, filter: Mapping[str, Any] | None = None, offset: int = 0, limit: int = 1000
    ) -> tuple[list[Contact], int | None]:
        """One page of contacts (offset paging) and the total Wix reports, if it does."""
        query: Json = {"paging": {"limit": limit, "offset": offset}}
        if filter:
            query["filter"] = dict(filter)
        body = await self.call("POST", f"{CONTACTS}/query", json={"query": query})
        contacts = [Contact.from_wire(item) for item in body.get("contacts") or []]
        total = (body.get("pagingMetadata") or {}).get("total")
        return contacts, (int(total) if total is not None else None)


def _paged_query(
    cursor: str | None, filter: Mapping[str, Any] | None, limit: int, *, sort: list[Json]
) -> Json:
    """The first page carries filter and sort; later pages carry only the cursor."""
    paging: Json = {"limit": min(limit, MAX_PAGE)}
    if cursor:
        return {"cursorPaging": {**paging, "cursor": cursor}}
    query: Json = {"sort": sort, "cursorPaging": paging}
    if filter:
        query["filter"] = dict(filter)
    return query


def _page(body: Json, items: list[Any]) -> Page[Any]:
    meta = body.get("pagingMetadata") or {}
    cursor = (meta.get("cursors") or {}).get("next")
    has_next = bool(meta.get("hasNext", cursor is not None))
    return Page(items=items, cursor=cursor, has_next=has_next and bool(cursor))


def _wire_time(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )
