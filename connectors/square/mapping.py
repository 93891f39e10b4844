"""Square's wire shapes turned into syncd's values: errors, accounts, events and times.

`raise_for_response` is the one place a Square answer becomes syncd's error tree:

    429 / RATE_LIMITED                  RateLimitedError (Retry-After honoured when sent)
    5xx                                 RetriableError (the client turns it into
                                        OutcomeUnknownError for a write it cannot settle)
    401, 403, UNAUTHORIZED,
    ACCESS_TOKEN_EXPIRED/REVOKED,
    INSUFFICIENT_SCOPES, FORBIDDEN      FatalError
    404 / NOT_FOUND                     NotFoundError
    IDEMPOTENCY_KEY_REUSED              SkipError with that code
    anything else                       SkipError with Square's code
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.base import ExternalAccount
from syncd.errors import (
    FatalError,
    NotFoundError,
    RateLimitedError,
    RemoteError,
    RetriableError,
    SkipError,
)
from syncd.names import join_name
from syncd.remote import request_id, retry_after

Json = dict[str, Any]
REQUEST_ID_HEADERS = ("x-request-id", "square-request-id")
FATAL_CODES = frozenset(
    {
        "UNAUTHORIZED",
        "ACCESS_TOKEN_EXPIRED",
        "ACCESS_TOKEN_REVOKED",
        "INSUFFICIENT_SCOPES",
        "FORBIDDEN",
        "CLIENT_DISABLED",
    }
)
FATAL_HINT = (
    "check the connector's access_token (expired, revoked, or missing the LOYALTY_READ, "
    "LOYALTY_WRITE, CUSTOMERS_READ and CUSTOMERS_WRITE permissions)"
)


def raise_for_response(
    response: httpx.Response, *, remote: str, account: str | None = None
) -> None:
    """Return if the answer is a success; otherwise raise the error that says what to do next."""
    if response.is_success:
        return
    status = response.status_code
    first = _first_error(response)
    code = first.get("code") if isinstance(first.get("code"), str) else None
    detail = first.get("detail") or code or response.reason_phrase or f"HTTP {status}"
    field = first.get("field")
    message = f"{detail} (field {field})" if isinstance(field, str) and field else str(detail)
    kw: dict[str, Any] = {
        "remote": remote,
        "status": status,
        "code": code,
        "request_id": request_id(response, REQUEST_ID_HEADERS),
        "account": account,
    }
    error: RemoteError
    if status == 429 or code == "RATE_LIMITED":
        error = RateLimitedError(message, retry_after=retry_after(response), **kw)
    elif status >= 500:
        error = RetriableError(message, **kw)
    elif status in (401, 403) or code in FATAL_CODES:
        error = FatalError(f"{message}: {FATAL_HINT}", **kw)
    elif status == 404:
        error = NotFoundError(message, **kw)
    else:
        # IDEMPOTENCY_KEY_REUSED lands here too: the key was sent before with another body.
        error = SkipError(message, **kw)
    raise error


def _first_error(response: httpx.Response) -> Json:
    try:
        body = response.json()
    except ValueError:
        return {}
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return errors[0]
    return {}


# -- accounts ----------------------------------------------------------------------------------


def to_account(loyalty_account: Json, customer: Json | None) -> ExternalAccount:
    """A LoyaltyAccount (and its Customer, when known) as syncd sees it."""
    mapping = loyalty_account.get("mapping") or {}
    email_address = (customer or {}).get("email_address")
    return ExternalAccount(
        id=str(loyalty_account["id"]),
        balance=int(loyalty_account.get("balance") or 0),
        email=email_address.strip().lower() if isinstance(email_address, str) else None,
        phone=mapping.get("phone_number") or None,
        name=customer_name(customer),
        version=loyalty_account.get("updated_at"),
    )


def customer_name(customer: Json | None) -> str | None:
    """ "Given Family" from a Customer, or None when it has neither."""
    if not customer:
        return None
    return join_name(customer.get("given_name"), customer.get("family_name"))


# -- events --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoyaltyEvent:
    """The parts of a Square LoyaltyEvent that syncd reads."""

    id: str
    type: str
    created_at: datetime
    account_id: str | None
    points: int | None
    reason: str | None
    source: str | None

    @classmethod
    def from_wire(cls, event: Json) -> LoyaltyEvent:
        adjust = event.get("adjust_points") or {}
        points = adjust.get("points")
        return cls(
            id=str(event["id"]),
            type=str(event.get("type") or ""),
            created_at=parse_time(str(event["created_at"])),
            account_id=event.get("loyalty_account_id"),
            points=int(points) if points is not None else None,
            reason=adjust.get("reason"),
            source=event.get("source"),
        )

    def tagged(self, key: str) -> bool:
        """Whether this is an adjustment whose reason starts with the tag `syncd:<key>`."""
        tag = f"syncd:{key}"
        if self.type != "ADJUST_POINTS" or not self.reason or not self.reason.startswith(tag):
            return False
        rest = self.reason[len(tag) :]
        return not rest or not (rest[0].isalnum() or rest[0] in "-_")


def parse_time(value: str) -> datetime:
    """An RFC 3339 timestamp (Z or an offset, any fraction) as an aware UTC datetime."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and Z, as filters are sent."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
