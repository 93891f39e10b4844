"""Wix records as syncd sees them: small frozen values parsed leniently from the wire.

Parsing tolerates unknown keys and missing optional ones; `revision` arrives as a JSON string
(int64) and is kept as an int.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def parse_time(value: object) -> datetime | None:
    """An ISO-8601 timestamp from the wire ('...Z' included), or None."""
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value)


def _int(value: object, default: int = 0) -> int:
    if value is None or value == "":
        return default
    return int(value)  # type: ignore[call-overload, no-any-return]


@dataclass(frozen=True)
class Account:
    """A loyalty account: one customer's points on the site."""

    id: str
    contact_id: str | None
    balance: int
    revision: int
    member_id: str | None = None
    email: str | None = None
    name: str | None = None
    earned: int = 0
    redeemed: int = 0
    updated_date: datetime | None = None

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> Account:
        points = raw.get("points") or {}
        contact = raw.get("contact") or {}
        return cls(
            id=str(raw["id"]),
            contact_id=raw.get("contactId") or contact.get("id"),
            balance=_int(points.get("balance")),
            revision=_int(raw.get("revision")),
            member_id=raw.get("memberId"),
            email=contact.get("email"),
            name=contact.get("name") or contact.get("displayName"),
            earned=_int(points.get("earned")),
            redeemed=_int(points.get("redeemed")),
            updated_date=parse_time(raw.get("updatedDate")),
        )


@dataclass(frozen=True)
class Transaction:
    """One entry of the points ledger; `amount_before/after` come from adjust or expire info."""

    id: str
    account_id: str
    amount: int
    type: str
    created_date: datetime | None
    description: str | None = None
    idempotency_key: str | None = None
    amount_before: int | None = None
    amount_after: int | None = None

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> Transaction:
        info = raw.get("adjustInfo") or raw.get("expireInfo") or {}
        return cls(
            id=str(raw["id"]),
            account_id=str(raw.get("accountId", "")),
            amount=_int(raw.get("amount")),
            type=str(raw.get("transactionType") or "UNKNOWN"),
            created_date=parse_time(raw.get("createdDate")),
            description=raw.get("description"),
            idempotency_key=raw.get("idempotencyKey"),
            amount_before=_int(info["amountBefore"]) if "amountBefore" in info else None,
            amount_after=_int(info["amountAfter"]) if "amountAfter" in info else None,
        )


@dataclass(frozen=True)
class Program:
    """The site's loyalty program; points move only while `status` is ACTIVE."""

    name: str | None
    status: str

    @property
    def active(self) -> bool:
        return self.status == "ACTIVE"

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> Program:
        return cls(name=raw.get("name"), status=str(raw.get("status") or "UNKNOWN"))


@dataclass(frozen=True)
class Contact:
    """A site contact (a loyalty account hangs off one); phones in E.164 where Wix made one."""

    id: str
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    first_name: str | None = None
    last_name: str | None = None

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> Contact:
        info = raw.get("info") or {}
        emails = tuple(
            str(item["email"])
            for item in (info.get("emails") or {}).get("items", [])
            if item.get("email")
        )
        phones = tuple(
            str(item.get("e164Phone") or item.get("phone"))
            for item in (info.get("phones") or {}).get("items", [])
            if item.get("e164Phone") or item.get("phone")
        )
        name = info.get("name") or {}
        return cls(
            id=str(raw["id"]),
            emails=emails,
            phones=phones,
            first_name=name.get("first"),
            last_name=name.get("last"),
        )


@dataclass(frozen=True)
class PointsChange:
    """What Adjust or Earn Points answered: the account after the change and its transaction."""

    account: Account
    transaction_id: str | None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a paged query; `cursor` fetches the next one while `has_next`."""

    items: list[T] = field(default_factory=list)
    cursor: str | None = None
    has_next: bool = False
