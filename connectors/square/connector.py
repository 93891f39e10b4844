"""The `square` connector: a Square seller's Loyalty program as a spoke of syncd.

Behaviour chosen where the interface leaves room:
- An account's email and name come from its Square customer (`customer_id`), read with
  Bulk Retrieve Customers for a whole page at once; its phone is the loyalty mapping (E.164).
  `version` is the account's `updated_at` (Square has no revision).
- `find_accounts("phone")` searches accounts by phone mapping (unique per program);
  `find_accounts("email")` searches customers by exact email, then accounts by those customer
  ids: several customers may share an email, so several accounts may come back. Customers
  search is eventually consistent: a customer made seconds ago may not be found yet.
- `create_account` needs a phone (Square maps accounts by phone only). When an email is given
  and no customer has the phone yet, it first creates the customer (email, phone, name) under
  an idempotency key derived from `key`; Square then links the new account to that customer
  because it looks customers up by the mapping's phone. If the phone already belongs to a
  customer, Square links to that one and syncd leaves the seller's profile as it is. A phone
  that already has an account is a DuplicateError naming it.
- `apply_delta` uses the operation id as Square's idempotency key and puts the `syncd:<key>`
  tag first in the adjustment's reason; negative results are refused (allow_negative_balance
  false), which is a SkipError.
- `read_back` looks for that tag among the account's ADJUST_POINTS events since `since` minus
  `READ_BACK_SKEW`; `changes_since` reads every loyalty event since the cursor minus
  `CHANGES_OVERLAP`, so till sales, redemptions and dashboard adjustments are all seen.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from connectors.base import (
    AccountPage,
    Capabilities,
    Change,
    ChangesPage,
    Connector,
    ExternalAccount,
    ExternalEvent,
    ReadBack,
    ReadBackResult,
    WriteResult,
    settings_as,
)
from connectors.square.client import QUERY_IDS, SquareClient
from connectors.square.mapping import (
    Json,
    LoyaltyEvent,
    format_time,
    parse_time,
    to_account,
)
from connectors.square.settings import SquareSettings
from syncd.budget import TokenBucket
from syncd.clock import utcnow
from syncd.errors import DuplicateError, NotFoundError, SkipError, WebhookRejected
from syncd.names import split_name
from syncd.retry import RetryPolicy
from syncd.settings import ConnectorSettings

SIGNATURE_HEADER = "x-square-hmacsha256-signature"
READ_BACK_SKEW = timedelta(minutes=5)  # our clock against Square's, and second-truncated stamps
CHANGES_OVERLAP = timedelta(seconds=5)  # each poll re-reads this much; the caller dedupes
SYNCD_TAG = "syncd:"  # the prefix of every write syncd makes: a change feed leaves those out
REASON_MAX = 3500
NO_PHONE = "square loyalty accounts are keyed by phone; this customer has none"
_KEYS = uuid.UUID("5b1f8a52-7d0e-4c59-9a57-3c1b6f0d2e11")  # namespace of derived keys


def derived_key(key: str, purpose: str) -> str:
    """A deterministic idempotency key for one step (`purpose`) of the operation `key`."""
    return str(uuid.uuid5(_KEYS, f"{purpose}:{key}"))


class SquareConnector(Connector):
    """Square Loyalty: delta writes with idempotency keys, HMAC webhooks, an events feed."""

    settings_model = SquareSettings
    capabilities = Capabilities(
        delta_writes=True,
        idempotency_keys=True,
        webhooks=True,
        change_feed=True,
        find_by=frozenset({"email", "phone"}),
        create_accounts=True,
    )

    def __init__(
        self,
        settings: ConnectorSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        budget: TokenBucket | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        square = settings_as(SquareSettings, settings)
        super().__init__(square)
        self.square = square
        self.client = SquareClient(square, transport=transport, budget=budget, retry=retry)
        self._program_id: str | None = None

    async def aclose(self) -> None:
        await self.client.aclose()

    @property
    def calls(self) -> int:
        return self.client.calls

    # -- reading -------------------------------------------------------------------------------

    async def iter_accounts(self, cursor: str | None = None) -> AsyncIterator[AccountPage]:
        """Every account, 200 a page, oldest first; each page's cursor resumes after it."""
        while True:
            raw, next_cursor = await self.client.search_accounts(cursor=cursor)
            yield AccountPage(await self._with_customers(raw), next_cursor)
            if not next_cursor:
                return
            cursor = next_cursor

    async def get_account(self, account_id: str) -> ExternalAccount:
        """One account's balance and phone, read fresh: one call. (Its customer's email and
        name are not looked up: syncing needs the balance; `iter_accounts` and
        `find_accounts` carry them.)"""
        return to_account(await self.client.get_account(account_id), None)

    async def describe_account(self, account_id: str) -> ExternalAccount:
        """The account with its customer's email and name (two calls)."""
        raw = await self.client.get_account(account_id)
        return (await self._with_customers([raw]))[0]

    async def find_accounts(self, key: str, value: str) -> list[ExternalAccount]:
        """Accounts whose phone mapping (E.164) or customer email equals `value`."""
        if key == "phone":
            raw = await self.client.search_all_accounts({"mappings": [{"phone_number": value}]})
            return await self._with_customers(raw)
        if key == "email":
            email = value.strip().lower()
            customers = await self.client.search_customers({"email_address": {"exact": email}})
            by_id = {
                str(c["id"]): c
                for c in customers
                if str(c.get("email_address") or "").strip().lower() == email
            }
            accounts = await self._accounts_of(list(by_id))
            return [to_account(a, by_id.get(str(a.get("customer_id")))) for a in accounts]
        raise ValueError(f"square cannot find accounts by {key!r}: use 'email' or 'phone'")

    async def _accounts_of(self, customer_ids: Sequence[str]) -> list[Json]:
        found: list[Json] = []
        for start in range(0, len(customer_ids), QUERY_IDS):
            chunk = list(customer_ids[start : start + QUERY_IDS])
            found += await self.client.search_all_accounts({"customer_ids": chunk})
        return found

    async def _with_customers(self, raw: list[Json]) -> list[ExternalAccount]:
        ids = [str(a["customer_id"]) for a in raw if a.get("customer_id")]
        customers = await self.client.bulk_retrieve_customers(ids) if ids else {}
        return [to_account(a, customers.get(str(a.get("customer_id")))) for a in raw]

    async def _program(self) -> str:
        if self._program_id is None:
            self._program_id = str((await self.client.get_program())["id"])
        return self._program_id

    # -- writing -------------------------------------------------------------------------------

    async def create_account(
        self, *, email: str | None, phone: str | None, name: str | None, key: str
    ) -> ExternalAccount:
        """A loyalty account for `phone`, linked to a customer carrying `email` when given."""
        if not phone:
            raise SkipError(NO_PHONE, remote=self.name)
        program_id = await self._program()
        if email:
            await self._ensure_customer(email.strip().lower(), phone, name, key)
        try:
            raw = await self.client.create_account(
                program_id=program_id, phone=phone, idempotency_key=derived_key(key, "account")
            )
        except NotFoundError:
            raise
        except SkipError as error:
            existing = await self.client.search_all_accounts(
                {"mappings": [{"phone_number": phone}]}
            )
            if not existing:
                raise
            raise DuplicateError(
                f"{phone} already has a loyalty account ({error.message})",
                existing_id=str(existing[0]["id"]),
                remote=self.name,
                status=error.status,
                code=error.code,
                request_id=error.request_id,
            ) from error
        return to_account(raw, None)

    async def _ensure_customer(self, email: str, phone: str, name: str | None, key: str) -> None:
        """Make sure a customer has this phone, creating one with the email if none has."""
        if await self.client.search_customers({"phone_number": {"exact": phone}}):
            return
        given, family = split_name(name)
        await self.client.create_customer(
            idempotency_key=derived_key(key, "customer"),
            email=email,
            phone=phone,
            given_name=given,
            family_name=family,
        )

    async def apply_delta(
        self, account_id: str, delta: int, *, key: str, reason: str
    ) -> WriteResult:
        """Adjust Points by `delta` with idempotency key `key` (1..128 characters, as Square
        allows); returns the event id. The reason is cut at Square's 3,500 characters."""
        if delta == 0:
            raise ValueError("apply_delta needs a non-zero delta")
        tag = f"syncd:{key}"
        if not reason.startswith(tag):
            reason = f"{tag} {reason}".rstrip()
        event = await self.client.adjust_points(
            account_id, points=delta, reason=reason[:REASON_MAX], idempotency_key=key
        )
        return WriteResult(remote_id=event.get("id"))

    async def read_back(self, account_id: str, *, key: str, since: datetime) -> ReadBackResult:
        """APPLIED when an ADJUST_POINTS event of the account carries the tag of `key`."""
        filter = {
            "loyalty_account_filter": {"loyalty_account_id": account_id},
            "type_filter": {"types": ["ADJUST_POINTS"]},
            "date_time_filter": {"created_at": {"start_at": format_time(since - READ_BACK_SKEW)}},
        }
        async for raw in self.client.iter_events(filter, account=account_id):
            event = LoyaltyEvent.from_wire(raw)
            if event.tagged(key):
                return ReadBackResult(ReadBack.APPLIED, event.id)
        return ReadBackResult(ReadBack.ABSENT)

    async def changes_since(self, cursor: str | None) -> ChangesPage:
        """Accounts with loyalty events since `cursor` (an RFC 3339 time); None starts now."""
        if cursor is None:
            return ChangesPage([], format_time(utcnow()))
        try:
            since = parse_time(cursor)
        except ValueError:
            raise ValueError(f"not a square change cursor: {cursor!r}") from None
        newest = since
        changed: list[Change] = []
        filter = {
            "date_time_filter": {"created_at": {"start_at": format_time(since - CHANGES_OVERLAP)}}
        }
        async for raw in self.client.iter_events(filter):
            event = LoyaltyEvent.from_wire(raw)
            newest = max(newest, event.created_at)
            if event.account_id and not (event.reason or "").startswith(SYNCD_TAG):
                changed.append(Change(event.id, event.account_id))
        return ChangesPage(changed[::-1], format_time(newest))  # Square lists newest first

    # -- webhooks ------------------------------------------------------------------------------

    def verify_webhook(
        self, raw_body: bytes, headers: Mapping[str, str], *, now: datetime
    ) -> list[ExternalEvent]:
        """Check `x-square-hmacsha256-signature` over notification URL + body, then parse."""
        key = self.square.webhook_signature_key
        url = self.square.webhook_url
        if key is None or not url:
            raise WebhookRejected("square webhooks need webhook_signature_key and webhook_url")
        given = _header(headers, SIGNATURE_HEADER)
        if not given:
            raise WebhookRejected(f"missing {SIGNATURE_HEADER} header")
        expected = signature(key.get_secret_value(), url, raw_body)
        if not hmac.compare_digest(expected.encode(), given.strip().encode()):
            raise WebhookRejected(
                "signature does not match (check webhook_signature_key and "
                "that webhook_url is exactly the URL registered at Square)"
            )
        return [_parse_event(raw_body)]


def signature(key: str, notification_url: str, raw_body: bytes) -> str:
    """Square's webhook signature: base64(HMAC-SHA256(key, notification URL + raw body))."""
    digest = hmac.new(key.encode(), notification_url.encode() + raw_body, hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _parse_event(raw_body: bytes) -> ExternalEvent:
    try:
        body: Any = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError, binascii.Error, RecursionError):
        raise WebhookRejected("body is not JSON") from None  # RecursionError: nested too deeply
    if not isinstance(body, dict):
        raise WebhookRejected("body is not a JSON object")
    event_id, event_type = body.get("event_id"), body.get("type")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
        raise WebhookRejected("body has no event_id or type")
    found = body.get("data")
    data: Mapping[str, Any] = found if isinstance(found, dict) else {}
    return ExternalEvent(
        event_id,
        event_type,
        _account_id(data),
        balance=_balance(event_type, data),
        own_write=_own_write(event_type, data),
    )


def _object(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """`data.object.<key>` when it is an object, else empty."""
    found = data.get("object")
    inner = found.get(key) if isinstance(found, dict) else None
    return inner if isinstance(inner, dict) else {}


def _balance(event_type: str, data: Mapping[str, Any]) -> int | None:
    """The balance a `loyalty.account.updated` event reports (a hint), when it has one."""
    if event_type != "loyalty.account.updated":
        return None
    value = _object(data, "loyalty_account").get("balance")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _own_write(event_type: str, data: Mapping[str, Any]) -> bool:
    """Whether a `loyalty.event.created` is one of syncd's adjustments (reason `syncd:...`)."""
    if event_type != "loyalty.event.created":
        return False
    adjust = _object(data, "loyalty_event").get("adjust_points")
    reason = adjust.get("reason") if isinstance(adjust, dict) else None
    return isinstance(reason, str) and reason.startswith(SYNCD_TAG)


def _account_id(data: Mapping[str, Any]) -> str | None:
    found = data.get("object")
    obj: Mapping[str, Any] = found if isinstance(found, dict) else {}
    account = obj.get("loyalty_account")
    if isinstance(account, dict) and isinstance(account.get("id"), str):
        return str(account["id"])
    event = obj.get("loyalty_event")
    if isinstance(event, dict) and isinstance(event.get("loyalty_account_id"), str):
        return str(event["loyalty_account_id"])
    if data.get("type") == "loyalty_account" and isinstance(data.get("id"), str):
        return str(data["id"])
    return None
