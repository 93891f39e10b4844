"""The store's tables: links, the operation outbox, cursors, inbox events and conflicts.

Every table subclasses `StoreTable`, whose `metadata` is the store's own (with a naming
convention, so constraints have stable names in migrations); tables defined elsewhere on the
default `SQLModel.metadata` are not part of the store's schema.

No `from __future__ import annotations` here: SQLModel builds the columns from the evaluated
annotations of table classes, so they stay real types.
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, MetaData, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from syncd.clock import utcnow
from syncd.store.types import StrEnumType, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)
"""The schema the migrations in `syncd/store/migrations` build."""


class StoreTable(SQLModel, registry=registry(metadata=metadata)):
    """Base of every store table: puts the table in the store's `metadata`."""


class Direction(StrEnum):
    """Which side an operation writes to."""

    TO_WIX = "to_wix"
    TO_EXTERNAL = "to_external"


class OperationStatus(StrEnum):
    """Where an outbox operation stands.

    PENDING (committed, not sent) → SENT (request may have reached the remote) → APPLIED
    (proven applied, bases moved) | FAILED (proven not applied) | VOID (superseded, never sent).
    """

    PENDING = "PENDING"
    SENT = "SENT"
    APPLIED = "APPLIED"
    FAILED = "FAILED"
    VOID = "VOID"


class ConflictStatus(StrEnum):
    """Whether a conflict still waits for an operator."""

    OPEN = "OPEN"
    RESOLVED = "RESOLVED"


def _utc(*, nullable: bool = True, onupdate: bool = False) -> dict[str, object]:
    """Column keyword arguments of a UTC timestamp."""
    kwargs: dict[str, object] = {"nullable": nullable}
    if onupdate:
        kwargs["onupdate"] = utcnow
    return kwargs


class Link(StoreTable, table=True):
    """One Wix loyalty account bound to one account in one connector, with the two bases."""

    __tablename__ = "links"
    __table_args__ = (
        UniqueConstraint("connector", "wix_account_id"),
        UniqueConstraint("connector", "external_id"),
        Index("ix_links_wix_account_id", "wix_account_id"),  # the other spokes of an account
    )

    id: int | None = Field(default=None, primary_key=True)
    connector: str
    wix_account_id: str
    wix_contact_id: str | None = None
    external_id: str
    wix_base: int | None = None
    ext_base: int | None = None
    wix_revision: str | None = None
    ext_version: str | None = None
    dirty: bool = Field(default=False, index=True)
    dirty_since: datetime | None = Field(default=None, sa_type=UTCDateTime())
    lease_owner: str | None = None
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime())
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=UTCDateTime(), sa_column_kwargs=_utc(nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow,
        sa_type=UTCDateTime(),
        sa_column_kwargs=_utc(nullable=False, onupdate=True),
    )


class Operation(StoreTable, table=True):
    """One remote write: the outbox row committed before the call, then its audit trail.

    `id` is deterministic (the caller derives it from link, bases, direction and delta) and
    travels with the write as its idempotency key / Wix description tag.
    """

    __tablename__ = "operations"

    id: str = Field(primary_key=True)
    link_id: int = Field(
        sa_column_args=[ForeignKey("links.id")], index=True, sa_column_kwargs={"nullable": False}
    )
    direction: Direction = Field(sa_type=StrEnumType(Direction))
    delta: int
    carried: int | None = None
    """How far both bases move when this write is applied (the delta, unless the write also
    reverts the loser's change under wix_wins / external_wins)."""
    planned_wix: int | None = None
    planned_ext: int | None = None
    planned_wix_base: int | None = None
    planned_ext_base: int | None = None
    status: OperationStatus = Field(
        default=OperationStatus.PENDING, sa_type=StrEnumType(OperationStatus), index=True
    )
    remote_tx_id: str | None = None
    attempts: int = 0
    error: str | None = None
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=UTCDateTime(), sa_column_kwargs=_utc(nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow,
        sa_type=UTCDateTime(),
        sa_column_kwargs=_utc(nullable=False, onupdate=True),
    )
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    applied_at: datetime | None = Field(default=None, sa_type=UTCDateTime())


class Cursor(StoreTable, table=True):
    """How far a poller has read a change feed; never moved past committed data."""

    __tablename__ = "cursors"

    name: str = Field(primary_key=True)
    value: str
    updated_at: datetime = Field(
        default_factory=utcnow,
        sa_type=UTCDateTime(),
        sa_column_kwargs=_utc(nullable=False, onupdate=True),
    )


class JobTurn(StoreTable, table=True):
    """Whose turn a scheduled job is: with several replicas, each turn runs in one of them."""

    __tablename__ = "job_turns"

    name: str = Field(primary_key=True)
    owner: str | None = None
    until: datetime = Field(sa_type=UTCDateTime(), sa_column_kwargs=_utc(nullable=False))
    """No other replica takes a turn before this moment."""


class InboxEvent(StoreTable, table=True):
    """A webhook or polled event, stored once per (source, event_id) to drop redeliveries."""

    __tablename__ = "inbox_events"
    __table_args__ = (UniqueConstraint("source", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    event_id: str
    event_type: str
    entity_id: str | None = None
    received_at: datetime = Field(
        default_factory=utcnow, sa_type=UTCDateTime(), sa_column_kwargs=_utc(nullable=False)
    )
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime())


class Conflict(StoreTable, table=True):
    """Something syncd would not decide alone; waits for an operator while OPEN.

    `kind` is e.g. both_changed, negative_balance, max_delta, ambiguous_match; `amount` is a
    number of points held back, so the ledger still adds up; `detail` holds ids, never
    personal data.
    """

    __tablename__ = "conflicts"

    id: int | None = Field(default=None, primary_key=True)
    link_id: int | None = Field(default=None, sa_column_args=[ForeignKey("links.id")])
    kind: str
    side: str | None = None
    """The side whose change `amount` was held back (its base absorbed it): wix | external."""
    wix_balance: int | None = None
    ext_balance: int | None = None
    amount: int | None = None
    detail: str
    status: ConflictStatus = Field(
        default=ConflictStatus.OPEN, sa_type=StrEnumType(ConflictStatus), index=True
    )
    resolution: str | None = None
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=UTCDateTime(), sa_column_kwargs=_utc(nullable=False)
    )
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime())


class StagedAccount(StoreTable, table=True):
    """One account read by a reconcile run (side "wix" with connector "", or "external")."""

    __tablename__ = "reconcile_accounts"
    __table_args__ = (
        Index("ix_reconcile_accounts_email", "side", "connector", "email"),
        Index("ix_reconcile_accounts_phone", "side", "connector", "phone"),
    )

    side: str = Field(primary_key=True)
    connector: str = Field(primary_key=True)
    account_id: str = Field(primary_key=True)
    contact_id: str | None = None
    email: str | None = None
    phone: str | None = None
    name: str | None = None
    balance: int
    revision: str | None = None
    staged_at: datetime = Field(
        default_factory=utcnow, sa_type=UTCDateTime(), sa_column_kwargs=_utc(nullable=False)
    )


class StagedContact(StoreTable, table=True):
    """A Wix contact's phone (loyalty accounts carry none), read for matching by phone."""

    __tablename__ = "reconcile_contacts"

    contact_id: str = Field(primary_key=True)
    email: str | None = None
    phone: str | None = Field(default=None, index=True)


class ReconcilePair(StoreTable, table=True):
    """A Wix account and an external account a reconcile run pairs, and how it paired them."""

    __tablename__ = "reconcile_pairs"
    __table_args__ = (UniqueConstraint("connector", "external_id"),)

    connector: str = Field(primary_key=True)
    wix_account_id: str = Field(primary_key=True)
    external_id: str
    matched_by: str
    started: bool = False
    """Its sync began in this run: after a crash its staged balances may be stale."""
    done: bool = False
