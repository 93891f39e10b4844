"""The port every connector implements: the one place that says what syncd needs of a spoke.

A connector is one external system (a POS, a CRM, a database) seen as a set of loyalty
accounts with integer balances. syncd's engine reads balances, finds and creates accounts,
and writes *deltas* tagged with an operation id; it never imports a connector's internals and
a connector never imports the engine. Each connector package has the same few files:
`settings.py` (its config keys), `client.py` (HTTP or SQL), `mapping.py` (wire → values here),
`connector.py` (this interface), `emulator.py` (the sandbox double).

Errors: every method raises only syncd's error tree (`syncd.errors`): `RetriableError` /
`RateLimitedError` (try later), `OutcomeUnknownError` (a write may have happened: call
`read_back`), `ConflictError` (the record changed under a compare-and-set: re-read, re-plan),
`NotFoundError` / `SkipError` (this record only), `FatalError` (credentials: stop).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Self, TypeVar

from syncd.settings import ConnectorSettings

SettingsT = TypeVar("SettingsT", bound=ConnectorSettings)


def settings_as(model: type[SettingsT], settings: ConnectorSettings) -> SettingsT:
    """`settings` as a connector type's own model (a generic table is checked by it)."""
    return settings if isinstance(settings, model) else model.model_validate(settings.model_dump())


@dataclass(frozen=True)
class Capabilities:
    """What a connector can do; the engine adapts to it instead of asking by type."""

    delta_writes: bool
    """True: `apply_delta` adds to the balance. False: the connector sets absolute values with a
    compare-and-set, translating the delta itself (and raising ConflictError on a lost race)."""
    idempotency_keys: bool
    """The remote dedupes writes by key, so resending a write with its key is safe."""
    webhooks: bool
    change_feed: bool
    find_by: frozenset[str]
    """Match keys `find_accounts` answers: a subset of {"email", "phone"}."""
    create_accounts: bool


@dataclass(frozen=True)
class ExternalAccount:
    """One account on the external side; `phone` in E.164 when known, `email` lower-cased."""

    id: str
    balance: int
    email: str | None = None
    phone: str | None = None
    name: str | None = None
    version: str | None = None
    """A marker that changes whenever the account changes (updated_at, a version column)."""


@dataclass(frozen=True)
class AccountPage:
    """One page of accounts; `cursor` resumes after it, None when this was the last page."""

    accounts: list[ExternalAccount]
    cursor: str | None


@dataclass(frozen=True)
class WriteResult:
    """A write that was applied: the remote's id for it (event, row) when it has one."""

    remote_id: str | None = None


class ReadBack(enum.Enum):
    """What reading the remote proved about a write whose outcome was unknown."""

    APPLIED = "applied"
    ABSENT = "absent"


@dataclass(frozen=True)
class ReadBackResult:
    outcome: ReadBack
    remote_id: str | None = None


@dataclass(frozen=True)
class Change:
    """One change the remote recorded: its own id (to drop repeats) and the account's."""

    event_id: str
    account_id: str


@dataclass(frozen=True)
class ChangesPage:
    """Changes since a cursor, oldest first, leaving out syncd's own writes; `cursor` is where
    to continue next time (windows may overlap: callers drop repeats by `event_id`)."""

    changes: list[Change]
    cursor: str

    @property
    def account_ids(self) -> list[str]:
        """The changed accounts, each once, in the order of their first change."""
        return list(dict.fromkeys(c.account_id for c in self.changes))


@dataclass(frozen=True)
class ExternalEvent:
    """One verified webhook event: a hint that `account_id` changed (balances are re-read).

    `merged_ids`: the accounts the remote merged into `account_id` (a CRM merging duplicate
    contacts); syncd re-points their links to `account_id`. `balance`: the account's balance
    the event reports, when it carries one (a hint: an event whose balance equals a link's
    external base, while no sync holds that link, is an echo and marks nothing).
    `own_write`: the event describes a write syncd made (its reason carries syncd's tag)."""

    event_id: str
    event_type: str
    account_id: str | None
    merged_ids: tuple[str, ...] = ()
    balance: int | None = None
    own_write: bool = False


class Connector(abc.ABC):
    """One external system, configured by one `[[connectors]]` table."""

    settings_model: ClassVar[type[ConnectorSettings]]
    capabilities: ClassVar[Capabilities]

    def __init__(self, settings: ConnectorSettings) -> None:
        self.name = settings.name
        self.settings = settings

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release connections."""

    async def prepare(self) -> list[str]:
        """Make sure what syncd needs on the remote exists (a custom property, a ledger table),
        creating it where the connector may; returns one line per thing it created. Called
        before a reconcile and when the daemon starts. FatalError when it is missing and
        cannot be created (say what the operator must do)."""
        return []

    @property
    def calls(self) -> int:
        """Requests made to the remote so far (for reports and metrics)."""
        return 0

    @abc.abstractmethod
    def iter_accounts(self, cursor: str | None = None) -> AsyncIterator[AccountPage]:
        """Every account, page by page, from `cursor` (a page's cursor resumes after it)."""

    @abc.abstractmethod
    async def get_account(self, account_id: str) -> ExternalAccount:
        """One account, read fresh. NotFoundError when it does not exist."""

    async def describe_account(self, account_id: str) -> ExternalAccount:
        """One account with its match keys (email, phone, name) filled in where the system
        has them — for matching a new customer; may cost more calls than `get_account`."""
        return await self.get_account(account_id)

    @abc.abstractmethod
    async def find_accounts(self, key: str, value: str) -> list[ExternalAccount]:
        """Accounts whose `key` ("email" or "phone", E.164) equals `value`; may be several."""

    @abc.abstractmethod
    async def create_account(
        self, *, email: str | None, phone: str | None, name: str | None, key: str
    ) -> ExternalAccount:
        """A new account with balance 0, created at most once for `key`.

        SkipError when the system cannot create one from what is given (e.g. no phone).
        """

    @abc.abstractmethod
    async def apply_delta(
        self, account_id: str, delta: int, *, key: str, reason: str
    ) -> WriteResult:
        """Add `delta` (non-zero, may be negative) under the operation id `key`.

        `reason` starts with the `syncd:<key>` tag that `read_back` looks for.
        OutcomeUnknownError when the write may or may not have happened.
        """

    @abc.abstractmethod
    async def read_back(self, account_id: str, *, key: str, since: datetime) -> ReadBackResult:
        """Whether the write tagged `key` (made no earlier than `since`) was applied."""

    async def changes_since(self, cursor: str | None) -> ChangesPage:
        """Accounts changed since `cursor` (None: start now). Only with `change_feed`."""
        raise NotImplementedError(f"{type(self).__name__} has no change feed")

    def verify_webhook(
        self, raw_body: bytes, headers: Mapping[str, str], *, now: datetime
    ) -> list[ExternalEvent]:
        """Check a webhook's signature and parse it. WebhookRejected if it is not authentic."""
        raise NotImplementedError(f"{type(self).__name__} takes no webhooks")
