"""The outbox: every remote write is an operation row committed before the call (DESIGN §2).

Each function here is one short database transaction; none is held open across a remote call.
The bases move only here, and only together with the status that justifies it: a write's
delta moves both bases in the transaction that marks it APPLIED; an absorbed amount moves its
side's base in the transaction that records its conflict.

The statements a sync runs for every change (`snapshot`, `begin_send`, `mark_applied`, `link`)
are plain SQLAlchemy Core on one connection: no ORM session, identity map or flush per call,
which cost several times the statements themselves. The rows they return are detached model
objects, as a session would have left them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import Table, insert, inspect, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import SQLModel, col, select

from syncd.clock import utcnow
from syncd.engine.rules import Bases, ConflictKind, Side
from syncd.store.db import session_scope
from syncd.store.models import (
    Conflict,
    ConflictStatus,
    Direction,
    Link,
    Operation,
    OperationStatus,
)

_NAMESPACE = uuid.UUID("5d0a8f5e-4f6b-4c4e-9a51-7b1f0c3e2a90")
UNRESOLVED = (OperationStatus.PENDING, OperationStatus.SENT)
TAG_PREFIX = "syncd:"
LINKS: Table = Link.__table__  # type: ignore[attr-defined]  # SQLModel sets it on table models
OPERATIONS: Table = Operation.__table__  # type: ignore[attr-defined]
Row = TypeVar("Row", bound=SQLModel)


@dataclass(frozen=True)
class Planned:
    """The state a plan was made against: both balances, the bases, Wix's revision."""

    wix: int
    ext: int
    bases: Bases
    wix_revision: int


def operation_id(link_id: int, planned: Planned, direction: Direction, delta: int) -> str:
    """A deterministic id: the same plan against the same state always gets the same id.

    It includes Wix's revision as well as the bases: bases can return to an earlier pair of
    values, but every write moves either the bases or the revision, so a later, genuinely new
    write never reuses an id (which would make it look applied already).
    """
    key = "|".join(
        str(part)
        for part in (
            link_id,
            planned.wix_revision,
            planned.bases.wix,
            planned.bases.ext,
            planned.wix,
            planned.ext,
            direction.value,
            delta,
        )
    )
    return str(uuid.uuid5(_NAMESPACE, key))


def tag(operation: str) -> str:
    """The marker a write carries so that reading back can find it."""
    return f"{TAG_PREFIX}{operation}"


def _detached(model: type[Row], row: Mapping[Any, Any]) -> Row:
    """A model object for a whole row read with Core, detached as a closed session leaves it
    (built the way the ORM loads rows: no `__init__`, whose validation costs 5x the rest)."""
    found: Row = inspect(model).class_manager.new_instance()
    found.__dict__.update(row)
    make_transient_to_detached(found)
    return found


# The statements of every sync, built once (building one costs more than running it). An
# UPDATE's SET columns are the parameters named like columns; `:op_id` / `:link_id` pick the row.
_OPS, _LINK = OPERATIONS.c, LINKS.c
_LINK_ROW = sa.select(LINKS).where(_LINK.id == sa.bindparam("link_id"))
_UNRESOLVED_OF_LINK = (
    sa.select(OPERATIONS)
    .where(_OPS.link_id == sa.bindparam("link_id"), _OPS.status.in_(UNRESOLVED))
    .order_by(_OPS.created_at)
)
_OPERATION_ROW = sa.select(OPERATIONS).where(_OPS.id == sa.bindparam("op_id"))
_OPERATION_FOR_APPLY = (
    sa.select(_OPS.status, _OPS.delta, _OPS.carried, _OPS.link_id, _OPS.direction)
    .where(_OPS.id == sa.bindparam("op_id"))
    .with_for_update()
)
_INSERT_OPERATION = insert(OPERATIONS)
_UPDATE_OPERATION = update(OPERATIONS).where(_OPS.id == sa.bindparam("op_id"))
_MOVE_BASES = (
    update(LINKS)
    .where(_LINK.id == sa.bindparam("link_id"))
    .values(
        wix_base=_LINK.wix_base + sa.bindparam("carried", type_=sa.Integer()),
        ext_base=_LINK.ext_base + sa.bindparam("carried", type_=sa.Integer()),
        updated_at=sa.bindparam("now", type_=_LINK.updated_at.type),
    )
)
_MARK_OTHER_SPOKES = (
    update(LINKS)
    .where(
        _LINK.wix_account_id
        == sa.select(_LINK.wix_account_id)
        .where(_LINK.id == sa.bindparam("link_id"))
        .scalar_subquery(),
        _LINK.id != sa.bindparam("link_id"),
    )
    .values(dirty=True, dirty_since=sa.bindparam("now", type_=_LINK.dirty_since.type))
)


def _link(connection: Connection, link_id: int) -> Link:
    row = connection.execute(_LINK_ROW, {"link_id": link_id}).mappings().first()
    if row is None:
        raise LookupError(f"no link {link_id}")
    return _detached(Link, row)


def _unresolved_of(connection: Connection, link_id: int) -> list[Operation]:
    rows = connection.execute(_UNRESOLVED_OF_LINK, {"link_id": link_id}).mappings()
    return [_detached(Operation, row) for row in rows]


class Outbox:
    """Operations, bases and conflicts of links, in one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def link(self, link_id: int) -> Link:
        with self.engine.begin() as connection:
            return _link(connection, link_id)

    def snapshot(self, link_id: int) -> tuple[Link, list[Operation]]:
        """The link and its unresolved (PENDING/SENT) operations, read in one transaction:
        what a sync starts from."""
        with self.engine.begin() as connection:
            return _link(connection, link_id), _unresolved_of(connection, link_id)

    def begin_send(
        self,
        link: Link,
        operation: str,
        direction: Direction,
        delta: int,
        carried: int,
        planned: Planned,
    ) -> Operation:
        """Record the intent before the call, committed already SENT (recovery reads back
        PENDING and SENT alike, so one transaction serves). An APPLIED or FAILED row with this
        id is returned as it is (nothing to send); any other (new, VOID, or PENDING/SENT) is
        SENT now.

        Safe because nothing tells PENDING from SENT when an outcome is settled: `recover` and
        `sync` read every unresolved operation back the same way, and a write proven absent is
        made VOID and planned again. What must hold, holds: the row is committed before the
        request leaves, and the read-back knows its id."""
        assert link.id is not None
        now = utcnow()
        with self.engine.begin() as connection:
            found = connection.execute(_OPERATION_ROW, {"op_id": operation}).mappings().first()
            if found is None:
                values: dict[str, Any] = {
                    "id": operation,
                    "link_id": link.id,
                    "direction": direction,
                    "delta": delta,
                    "carried": carried,
                    "planned_wix": planned.wix,
                    "planned_ext": planned.ext,
                    "planned_wix_base": planned.bases.wix,
                    "planned_ext_base": planned.bases.ext,
                    "status": OperationStatus.SENT,
                    "attempts": 1,
                    "created_at": now,
                    "updated_at": now,
                    "sent_at": now,
                    "applied_at": None,
                    "remote_tx_id": None,
                    "error": None,
                }
                connection.execute(_INSERT_OPERATION, values)
                return _detached(Operation, values)
            row = dict(found)
            if row["status"] in (OperationStatus.APPLIED, OperationStatus.FAILED):
                return _detached(Operation, row)
            sent = {
                "status": OperationStatus.SENT,
                "attempts": row["attempts"] + 1,
                "sent_at": now,
                "updated_at": now,
                "error": None if row["status"] is OperationStatus.VOID else row["error"],
            }
            connection.execute(_UPDATE_OPERATION, {"op_id": operation, **sent})
            return _detached(Operation, row | sent)

    def mark_applied(self, operation: str, remote_id: str | None) -> None:
        """APPLIED, and both bases of its link move by its `carried`, in one transaction.

        A write to Wix changed a balance every other spoke of that Wix account mirrors: their
        links are marked dirty in the same transaction, so the change reaches each of them
        even when the webhook of our own write is lost (the Wix poll leaves our writes out)."""
        with self.engine.begin() as connection:
            row = connection.execute(_OPERATION_FOR_APPLY, {"op_id": operation}).one()
            if row.status is OperationStatus.APPLIED:
                return
            carried = row.delta if row.carried is None else row.carried
            now = utcnow()
            applied = {
                "op_id": operation,
                "status": OperationStatus.APPLIED,
                "remote_tx_id": remote_id,
                "applied_at": now,
                "error": None,
                "updated_at": now,
            }
            connection.execute(_UPDATE_OPERATION, applied)
            moved = {"link_id": row.link_id, "carried": carried, "now": now}
            connection.execute(_MOVE_BASES, moved)
            if row.direction is Direction.TO_WIX:
                connection.execute(_MARK_OTHER_SPOKES, {"link_id": row.link_id, "now": now})

    def mark_void(self, operation: str, reason: str) -> None:
        """Proven not applied (a 409, a read-back that found nothing): free to plan again."""
        self._finish(operation, OperationStatus.VOID, reason)

    def mark_failed(self, operation: str, reason: str) -> None:
        """Refused by the remote for good (invalid, not found): recorded, not retried."""
        self._finish(operation, OperationStatus.FAILED, reason)

    def _finish(self, operation: str, status: OperationStatus, reason: str) -> None:
        finished = {
            "op_id": operation,
            "status": status,
            "error": reason[:500],
            "updated_at": utcnow(),
        }
        with self.engine.begin() as connection:
            done = connection.execute(_UPDATE_OPERATION, finished)
            assert done.rowcount == 1, f"no operation {operation}"

    def unresolved(
        self, *, link_id: int | None = None, connector: str | None = None
    ) -> list[Operation]:
        """PENDING or SENT operations: their outcome must be settled before new work."""
        with session_scope(self.engine) as session:
            query = select(Operation).where(col(Operation.status).in_(UNRESOLVED))
            if link_id is not None:
                query = query.where(Operation.link_id == link_id)
            if connector is not None:
                query = query.join(Link, col(Link.id) == Operation.link_id).where(
                    Link.connector == connector
                )
            return list(session.exec(query.order_by(col(Operation.created_at))).all())

    def set_bases(self, link_id: int, wix: int, ext: int) -> None:
        """Start a new link's bases (a link that already has bases keeps them)."""
        with session_scope(self.engine) as session:
            session.execute(
                update(Link)
                .where(col(Link.id) == link_id, col(Link.wix_base).is_(None))
                .values(wix_base=wix, ext_base=ext, updated_at=utcnow())
            )

    def absorb(
        self,
        link_id: int,
        side: Side,
        amount: int,
        conflict: ConflictKind | None,
        detail: str,
        *,
        wix: int,
        ext: int,
    ) -> None:
        """Move `side`'s base by `amount`; with a conflict kind, record it OPEN, atomically."""
        column = Link.wix_base if side == "wix" else Link.ext_base
        with session_scope(self.engine) as session:
            session.execute(
                update(Link)
                .where(col(Link.id) == link_id)
                .values({column: col(column) + amount, "updated_at": utcnow()})
            )
            if conflict is not None:
                session.add(
                    Conflict(
                        link_id=link_id,
                        kind=conflict.value,
                        side=side,
                        amount=amount,
                        wix_balance=wix,
                        ext_balance=ext,
                        detail=detail,
                    )
                )

    def open_conflict(
        self, link_id: int, kind: ConflictKind, detail: str, *, wix: int, ext: int
    ) -> None:
        """Record a conflict for an operator, once: an open one of the same kind is kept."""
        with session_scope(self.engine) as session:
            existing = session.exec(
                select(Conflict).where(
                    Conflict.link_id == link_id,
                    Conflict.kind == kind.value,
                    Conflict.status == ConflictStatus.OPEN,
                )
            ).first()
            if existing is None:
                session.add(
                    Conflict(
                        link_id=link_id,
                        kind=kind.value,
                        wix_balance=wix,
                        ext_balance=ext,
                        detail=detail,
                    )
                )
