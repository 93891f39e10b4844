"""The outbox: every remote write is an operation row committed before the call (DESIGN §2).

Each function here is one short database transaction; none is held open across a remote call.
The bases move only here, and only together with the status that justifies it: a write's
delta moves both bases in the transaction that marks it APPLIED; an absorbed amount moves its
side's base in the transaction that records its conflict.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col, select

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


class Outbox:
    """Operations, bases and conflicts of links, in one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def link(self, link_id: int) -> Link:
        with session_scope(self.engine) as session:
            link = session.get(Link, link_id)
            if link is None:
                raise LookupError(f"no link {link_id}")
            return link

    def begin(
        self,
        link: Link,
        operation: str,
        direction: Direction,
        delta: int,
        carried: int,
        planned: Planned,
    ) -> Operation:
        """Record the intent (PENDING) before the call; an existing row is returned as it is,
        except that a VOID one (proven never applied) is made PENDING again."""
        assert link.id is not None
        with session_scope(self.engine) as session:
            row = session.get(Operation, operation)
            if row is None:
                row = Operation(
                    id=operation,
                    link_id=link.id,
                    direction=direction,
                    delta=delta,
                    carried=carried,
                    planned_wix=planned.wix,
                    planned_ext=planned.ext,
                    planned_wix_base=planned.bases.wix,
                    planned_ext_base=planned.bases.ext,
                )
                session.add(row)
            elif row.status is OperationStatus.VOID:
                row.status = OperationStatus.PENDING
                row.error = None
            session.flush()
            return row

    def mark_sent(self, operation: str) -> None:
        with session_scope(self.engine) as session:
            row = session.get(Operation, operation)
            assert row is not None
            row.status = OperationStatus.SENT
            row.attempts += 1
            row.sent_at = utcnow()

    def mark_applied(self, operation: str, remote_id: str | None) -> None:
        """APPLIED, and both bases of its link move by its `carried`, in one transaction.

        A write to Wix changed a balance every other spoke of that Wix account mirrors: their
        links are marked dirty in the same transaction, so the change reaches each of them
        even when the webhook of our own write is lost (the Wix poll leaves our writes out)."""
        with session_scope(self.engine) as session:
            row = session.get(Operation, operation, with_for_update=True)
            assert row is not None
            if row.status is OperationStatus.APPLIED:
                return
            carried = row.delta if row.carried is None else row.carried
            now = utcnow()
            row.status = OperationStatus.APPLIED
            row.remote_tx_id = remote_id
            row.applied_at = now
            row.error = None
            session.execute(
                update(Link)
                .where(col(Link.id) == row.link_id)
                .values(
                    wix_base=col(Link.wix_base) + carried,
                    ext_base=col(Link.ext_base) + carried,
                    updated_at=now,
                )
            )
            if row.direction is Direction.TO_WIX:
                account = select(Link.wix_account_id).where(col(Link.id) == row.link_id)
                session.execute(
                    update(Link)
                    .where(
                        col(Link.wix_account_id) == account.scalar_subquery(),
                        col(Link.id) != row.link_id,
                    )
                    .values(dirty=True, dirty_since=now)
                )

    def mark_void(self, operation: str, reason: str) -> None:
        """Proven not applied (a 409, a read-back that found nothing): free to plan again."""
        self._finish(operation, OperationStatus.VOID, reason)

    def mark_failed(self, operation: str, reason: str) -> None:
        """Refused by the remote for good (invalid, not found): recorded, not retried."""
        self._finish(operation, OperationStatus.FAILED, reason)

    def _finish(self, operation: str, status: OperationStatus, reason: str) -> None:
        with session_scope(self.engine) as session:
            row = session.get(Operation, operation)
            assert row is not None
            row.status = status
            row.error = reason[:500]

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
