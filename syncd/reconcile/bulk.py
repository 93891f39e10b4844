"""A reconcile plan carried out in bulk: a chunk of pairs costs a few transactions, not a few
per pair.

Most pairs of a backfill need no call at all: their balances agree, or a new link only needs
its bases. Those are settled a chunk at a time, in one transaction. Pairs whose plan is only
writes (the usual divergence) are written in batches with the outbox's rules (DESIGN §2): one
transaction records every write of the batch as SENT before any call goes out; the calls go out
concurrently, each tagged with its operation id; one transaction marks the answered ones
APPLIED and moves their bases. Every other pair — a staged balance that may be stale, a
conflict, a write refused or with an unknown outcome — goes through the applier one at a time,
exactly as the daemon syncs it (`Applier.sync` settles what this batch left SENT by reading
it back).

Every conditional statement here checks the link's bases are still the ones the plan was made
against, so a daemon syncing the same link meanwhile sends the pair to the applier instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, or_, select, update
from sqlalchemy.engine import Connection, Engine

from syncd.clock import utcnow
from syncd.engine.outbox import Planned, operation_id
from syncd.engine.rules import AdjustExternal, AdjustWix, Bases, Plan, SetBases, Write
from syncd.reconcile.staging import EXTERNAL, WIX
from syncd.store.models import (
    Direction,
    Link,
    Operation,
    OperationStatus,
    ReconcilePair,
    StagedAccount,
)

_PAIRS = ReconcilePair.__table__  # type: ignore[attr-defined]
_STAGED = StagedAccount.__table__  # type: ignore[attr-defined]
_LINKS = Link.__table__  # type: ignore[attr-defined]
_OPERATIONS = Operation.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PairRow:
    """One pair as staged, with its link."""

    wix_id: str
    ext_id: str
    matched_by: str
    contact_id: str | None
    wix_balance: int
    wix_revision: int
    ext_balance: int
    link_id: int | None
    bases: Bases
    trusted: bool  # the staged balances still describe the link (it was not synced since)


def pair_chunks(
    engine: Engine, connector: str, run_started: datetime, *, size: int, pending_only: bool = False
) -> Iterator[list[PairRow]]:
    """Every pair with its staged accounts and link, `size` at a time (keyset on the Wix id);
    one query a chunk."""
    wix, ext = _STAGED.alias("w"), _STAGED.alias("x")
    # Whether the staged balances still describe the pair, so no fresh read is needed: true
    # unless its sync already began in this run (a resumed run), an account was never staged
    # (killed between creating it and staging it), or its link moved since the accounts were
    # staged (the daemon synced it meanwhile). Decided in SQL: no timestamp reaches Python.
    trusted = and_(
        _PAIRS.c.started.is_(False),
        wix.c.balance.is_not(None),
        ext.c.balance.is_not(None),
        or_(
            _LINKS.c.id.is_(None),
            _LINKS.c.wix_base.is_(None),
            _LINKS.c.created_at >= run_started,  # made by this run and not synced yet
            and_(_LINKS.c.updated_at <= wix.c.staged_at, _LINKS.c.updated_at <= ext.c.staged_at),
        ),
    )
    query = (
        select(
            _PAIRS.c.wix_account_id,
            _PAIRS.c.external_id,
            _PAIRS.c.matched_by,
            wix.c.balance,
            wix.c.revision,
            wix.c.contact_id,
            ext.c.balance,
            _LINKS.c.id,
            _LINKS.c.wix_base,
            _LINKS.c.ext_base,
            case((trusted, True), else_=False),
        )
        .select_from(
            _PAIRS.outerjoin(
                wix,
                and_(
                    wix.c.side == WIX,
                    wix.c.connector == _PAIRS.c.connector,
                    wix.c.account_id == _PAIRS.c.wix_account_id,
                ),
            )
            .outerjoin(
                ext,
                and_(
                    ext.c.side == EXTERNAL,
                    ext.c.connector == _PAIRS.c.connector,
                    ext.c.account_id == _PAIRS.c.external_id,
                ),
            )
            .outerjoin(
                _LINKS,
                and_(
                    _LINKS.c.connector == _PAIRS.c.connector,
                    _LINKS.c.wix_account_id == _PAIRS.c.wix_account_id,
                ),
            )
        )
        .where(_PAIRS.c.connector == connector)
        .order_by(_PAIRS.c.wix_account_id)
        .limit(size)
    )
    if pending_only:
        query = query.where(_PAIRS.c.done.is_(False))
    after = ""
    while True:
        with engine.connect() as connection:
            rows = connection.execute(query.where(_PAIRS.c.wix_account_id > after)).all()
        if not rows:
            return
        yield [_pair_row(row) for row in rows]
        after = rows[-1][0]


def _pair_row(row: Any) -> PairRow:
    wix_id, ext_id, matched_by, w_balance, w_revision, contact_id, x_balance = row[:7]
    link_id, wix_base, ext_base, trusted = row[7:]
    return PairRow(
        wix_id=wix_id,
        ext_id=ext_id,
        matched_by=matched_by,
        contact_id=contact_id,
        wix_balance=int(w_balance or 0),
        wix_revision=int(w_revision or 0),
        ext_balance=int(x_balance or 0),
        link_id=link_id,
        bases=Bases(wix_base, ext_base),
        trusted=bool(trusted),
    )


def only_writes(plan: Plan) -> bool:
    """Whether the plan is nothing but a new link's bases and writes (no absorb, no conflict)."""
    return bool(plan.writes) and all(
        isinstance(a, SetBases | AdjustWix | AdjustExternal) for a in plan.actions
    )


def start_bases(plan: Plan) -> SetBases | None:
    return next((a for a in plan.actions if isinstance(a, SetBases)), None)


def settle(
    connection: Connection, connector: str, settled: Sequence[tuple[PairRow, Plan]]
) -> list[PairRow]:
    """Pairs whose plan makes no call: give new links their bases and mark the pairs done.
    Returns the pairs whose link moved meanwhile (they go to the applier)."""
    starting = [(pair, start) for pair, plan in settled if (start := start_bases(plan))]
    moved = move_bases(connection, starting)
    gone = {pair.wix_id for pair in moved}
    mark_pairs(
        connection, connector, [p.wix_id for p, _ in settled if p.wix_id not in gone], done=True
    )
    return moved


@dataclass
class BatchWrite:
    """One write of a batch: its operation id, and what it sends."""

    pair: PairRow
    operation: str
    action: Write

    @property
    def direction(self) -> Direction:
        return Direction.TO_WIX if isinstance(self.action, AdjustWix) else Direction.TO_EXTERNAL


def begin_writes(
    connection: Connection, connector: str, planned: Sequence[tuple[PairRow, Plan]]
) -> tuple[list[list[BatchWrite]], list[PairRow]]:
    """Record every write of these pairs as SENT (and new links' bases) in the caller's
    transaction. Returns the writes by pair, and the pairs left to the applier: a link that
    moved since it was staged, or an operation id already on record (a resumed run)."""
    writes = {
        pair.wix_id: [BatchWrite(pair, _operation_id(pair, plan, w), w) for w in plan.writes]
        for pair, plan in planned
    }
    ids = [w.operation for each in writes.values() for w in each]
    known = set(
        connection.execute(select(_OPERATIONS.c.id).where(_OPERATIONS.c.id.in_(ids))).scalars()
    )
    fresh = [
        (p, plan) for p, plan in planned if not known & {w.operation for w in writes[p.wix_id]}
    ]
    # Setting a link's bases to what they are is the check that it did not move.
    moved = move_bases(
        connection, [(p, start_bases(plan) or SetBases(*_as_ints(p.bases))) for p, plan in fresh]
    )
    gone = {pair.wix_id for pair in moved}
    by_pair = [writes[p.wix_id] for p, _ in fresh if p.wix_id not in gone]
    to_applier = [p for p, _ in planned if p.wix_id not in {w[0].pair.wix_id for w in by_pair}]
    now = utcnow()
    rows = [_operation_row(w, now) for each in by_pair for w in each]
    if rows:
        connection.execute(_OPERATIONS.insert(), rows)
    mark_pairs(connection, connector, [w[0].pair.wix_id for w in by_pair], started=True)
    return by_pair, to_applier


def finish_writes(connection: Connection, applied: Sequence[tuple[BatchWrite, str | None]]) -> None:
    """APPLIED, with both bases moved by each write's `carried`, in the caller's transaction.
    A write to Wix marks the other spokes' links of that account dirty (as `Outbox.mark_applied`
    does)."""
    if not applied:
        return
    now = utcnow()
    connection.execute(
        update(_OPERATIONS)
        .where(_OPERATIONS.c.id == bindparam("op"))
        .values(status=OperationStatus.APPLIED, remote_tx_id=bindparam("remote"), applied_at=now),
        [{"op": w.operation, "remote": remote} for w, remote in applied],
    )
    connection.execute(
        update(_LINKS)
        .where(_LINKS.c.id == bindparam("link"))
        .values(
            wix_base=_LINKS.c.wix_base + bindparam("carried"),
            ext_base=_LINKS.c.ext_base + bindparam("carried"),
            updated_at=now,
        ),
        [{"link": w.pair.link_id, "carried": w.action.carried} for w, _ in applied],
    )
    to_wix = [w for w, _ in applied if w.direction is Direction.TO_WIX]
    if to_wix:
        connection.execute(
            update(_LINKS)
            .where(_LINKS.c.wix_account_id == bindparam("wix"), _LINKS.c.id != bindparam("link"))
            .values(dirty=True, dirty_since=now),
            [{"wix": w.pair.wix_id, "link": w.pair.link_id} for w in to_wix],
        )


def void_write(connection: Connection, operation: str, reason: str) -> None:
    connection.execute(
        update(_OPERATIONS)
        .where(_OPERATIONS.c.id == operation)
        .values(status=OperationStatus.VOID, error=reason[:500])
    )


def fail_write(connection: Connection, operation: str, reason: str) -> None:
    connection.execute(
        update(_OPERATIONS)
        .where(_OPERATIONS.c.id == operation)
        .values(status=OperationStatus.FAILED, error=reason[:500])
    )


def mark_pairs(
    connection: Connection, connector: str, wix_ids: Sequence[str], **flags: bool
) -> None:
    if wix_ids:
        connection.execute(
            update(_PAIRS)
            .where(_PAIRS.c.connector == connector, _PAIRS.c.wix_account_id.in_(wix_ids))
            .values(**flags)
        )


def move_bases(connection: Connection, starts: Sequence[tuple[PairRow, SetBases]]) -> list[PairRow]:
    """Set each link's bases to its start if they are still the staged ones (one statement
    for all); returns the pairs whose link moved."""
    if not starts:
        return []
    statement = (
        update(_LINKS)
        .where(
            _LINKS.c.id == bindparam("link"),
            _LINKS.c.wix_base.is_not_distinct_from(bindparam("old_wix")),
            _LINKS.c.ext_base.is_not_distinct_from(bindparam("old_ext")),
        )
        .values(wix_base=bindparam("wix"), ext_base=bindparam("ext"), updated_at=utcnow())
    )
    rows = [
        {
            "link": pair.link_id,
            "old_wix": pair.bases.wix,
            "old_ext": pair.bases.ext,
            "wix": start.wix,
            "ext": start.ext,
        }
        for pair, start in starts
    ]
    if connection.execute(statement, rows).rowcount == len(rows):
        return []
    # Some link moved (a daemon synced it meanwhile): find which, one by one (rare).
    return [
        pair
        for pair, row in zip((p for p, _ in starts), rows, strict=True)
        if connection.execute(
            select(_LINKS.c.id).where(
                _LINKS.c.id == row["link"],
                _LINKS.c.wix_base.is_not_distinct_from(row["wix"]),
                _LINKS.c.ext_base.is_not_distinct_from(row["ext"]),
            )
        ).first()
        is None
    ]


def _operation_id(pair: PairRow, plan: Plan, write: Write) -> str:
    """The id the applier would give this write (same link, state and plan: same id)."""
    planned = Planned(pair.wix_balance, pair.ext_balance, pair.bases, pair.wix_revision)
    direction = Direction.TO_WIX if isinstance(write, AdjustWix) else Direction.TO_EXTERNAL
    return operation_id(pair.link_id or 0, planned, direction, write.delta)


def _operation_row(write: BatchWrite, now: datetime) -> dict[str, Any]:
    pair = write.pair
    return {
        "id": write.operation,
        "link_id": pair.link_id,
        "direction": write.direction,
        "delta": write.action.delta,
        "carried": write.action.carried,
        "planned_wix": pair.wix_balance,
        "planned_ext": pair.ext_balance,
        "planned_wix_base": pair.bases.wix,
        "planned_ext_base": pair.bases.ext,
        "status": OperationStatus.SENT,
        "attempts": 1,
        "created_at": now,
        "updated_at": now,
        "sent_at": now,
    }


def _as_ints(bases: Bases) -> tuple[int, int]:
    assert bases.wix is not None and bases.ext is not None
    return bases.wix, bases.ext
