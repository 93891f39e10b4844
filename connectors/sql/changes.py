"""The sql connector's change feed: which accounts the till changed since a cursor.

`changes = "updated_at"` (a timestamp the database keeps):
- ledger mode: ledger rows made after the watermark minus `OVERLAP`, leaving out syncd's own
  (a key in the key column and, when there is a reason column, a reason starting `syncd:`);
  event id = the ledger row's id.
- column mode: account rows updated after the watermark minus `OVERLAP`. The row alone cannot
  tell syncd's write from the till's, so every write syncd makes records the row's state
  after it and before it in the applied table. A row still in exactly the state syncd left
  is left out, and any later change (a new version or updated_at) is reported. A till change
  that syncd wrote over before any poll saw it is still reported: the state syncd found the
  row in, when syncd did not make it and it is newer than the window's start. Event id
  `id@updated_at@version` (`...@p<points>` without a version column) — the state's text, so
  a repeat within the overlap, or the same change seen both ways, is dropped by the caller.
- The watermark is the newest time among the till's changes as the database wrote them (not
  syncd's clock); None starts after the newest change there is now.

`changes = "snapshot"` (no usable timestamp): the current balances are compared with the
snapshot table and the differences reported; the snapshot is updated in the same transaction.
The cursor names a generation `n`. Each snapshot row keeps its balance as last reported and
the one before (`previous`, when it was reported in generation `n+1`), so a poll repeated
with the same cursor (the caller crashed before saving the new one) compares against the
same balances and reports the same event ids (`id:old->new:n+1`). syncd's own writes move the
snapshot in their own transaction (`statements.shift_snapshot`), so they are not reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, not_, or_, select, update
from sqlalchemy.engine import Connection

from connectors.base import Change, ChangesPage
from connectors.sql.mapping import (
    parse_snapshot_cursor,
    parse_time_cursor,
    shifted,
    snapshot_cursor,
    state_of,
    time_cursor,
)
from connectors.sql.schema import Ledger, Schema
from connectors.sql.statements import balance_of

OVERLAP = timedelta(seconds=10)  # each poll re-reads this much; the caller dedupes by event id
SYNCD_TAG = "syncd:"
CHUNK = 500  # ids per IN (...) list


def ledger_changes(connection: Connection, schema: Schema, cursor: str | None) -> ChangesPage:
    """The till's ledger rows since the cursor's watermark (minus the overlap)."""
    ledger = schema.ledger
    assert ledger is not None and ledger.created_at is not None
    made = ledger.created_at
    theirs = _not_ours(ledger)
    if cursor is None:
        newest = connection.execute(select(func.max(made)).where(theirs)).scalar()
        return ChangesPage([], _start(newest))
    mark = parse_time_cursor(cursor)
    query = select(ledger.id, ledger.account, made).where(theirs, made.is_not(None))
    if mark is not None:
        query = query.where(made > shifted(mark, -OVERLAP))
    rows = connection.execute(query.order_by(made, ledger.id)).all()
    changes = [Change(str(row_id), str(account)) for row_id, account, _ in rows]
    return ChangesPage(changes, time_cursor(_newest(mark, (row[2] for row in rows))))


def column_changes(connection: Connection, schema: Schema, cursor: str | None) -> ChangesPage:
    """The accounts updated since the cursor's watermark, except rows syncd left as they are."""
    updated = schema.updated_at
    assert updated is not None and schema.points is not None
    if cursor is None:
        newest = connection.execute(select(func.max(updated))).scalar()
        return ChangesPage([], _start(newest))
    mark = parse_time_cursor(cursor)
    version = schema.version if schema.version is not None else schema.points
    query = select(schema.id, updated, version).where(updated.is_not(None))
    if mark is not None:
        query = query.where(updated > shifted(mark, -OVERLAP))
    rows = connection.execute(query.order_by(updated, schema.id)).all()
    versioned = schema.version is not None
    states = [
        state_of(row_id, at, value if versioned else None, None if versioned else value)
        for row_id, at, value in rows
    ]
    ours = _syncd_states(connection, schema, states)
    found = [
        (Change(state, str(row_id)), at)
        for (row_id, at, _), state in zip(rows, states, strict=True)
        if state not in ours
    ]
    floor = None if mark is None else shifted(mark, -OVERLAP)
    found += _overwritten(connection, schema, [s for s in states if s in ours], floor)
    found.sort(key=lambda pair: (pair[1] is None, pair[1] or mark or ""))  # oldest first
    changes = [change for change, _ in found]
    return ChangesPage(changes, time_cursor(_newest(mark, (at for _, at in found))))


def _overwritten(
    connection: Connection, schema: Schema, ours: list[str], floor: datetime | str | None
) -> list[tuple[Change, Any]]:
    """Till changes no poll saw because syncd wrote over them first: walking back from rows
    in syncd's state through the states syncd found them in, the first state syncd did not
    make, when it is newer than `floor`. Its event id is that state, as a poll seeing it
    would have reported it. Returns the changes with their updated_at."""
    applied = schema.applied.c
    found: list[tuple[Change, Any]] = []
    seen: set[str] = set(ours)
    frontier = ours
    while frontier:
        steps: list[tuple[str, str, Any]] = []
        for start in range(0, len(frontier), CHUNK):
            query = select(applied.account_id, applied.state_before, applied.before_at).where(
                applied.state_after.in_(frontier[start : start + CHUNK]),
                applied.state_before.is_not(None),
            )
            for account_id, state, at_text in connection.execute(query):
                at = _as_time(at_text, floor)
                if state not in seen and (floor is None or (at is not None and at > floor)):
                    seen.add(state)
                    steps.append((str(account_id), str(state), at))
        made_by_syncd = _syncd_states(connection, schema, [state for _, state, _ in steps])
        found += [(Change(s, a), at) for a, s, at in steps if s not in made_by_syncd]
        frontier = [state for _, state, _ in steps if state in made_by_syncd]
    return found


def _as_time(text: str | None, like: datetime | str | None) -> Any:
    """A stored time text read back as the watermark holds times (a datetime, or text)."""
    if text is None or not isinstance(like, datetime):
        return text
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def snapshot_changes(connection: Connection, schema: Schema, cursor: str | None) -> ChangesPage:
    """The accounts whose balance differs from the snapshot; the snapshot moves to now."""
    snapshot = schema.snapshot
    assert snapshot is not None
    balances = {
        str(row_id): int(balance)
        for row_id, balance in connection.execute(
            select(schema.id, balance_of(schema)).select_from(schema.accounts)
        )
    }
    known = {row.account_id: row for row in connection.execute(select(snapshot))}
    if cursor is None:
        generation = max((int(r.generation) for r in known.values()), default=0) + 1
        _restart(connection, schema, balances, generation)
        return ChangesPage([], snapshot_cursor(generation))
    seen = parse_snapshot_cursor(cursor)
    generation = seen + 1
    changes: list[Change] = []
    for account_id, balance in balances.items():
        row = known.get(account_id)
        if row is None:
            if balance:
                changes.append(Change(f"{account_id}:none->{balance}:{generation}", account_id))
                _insert(connection, schema, account_id, balance, None, generation)
            continue
        redone = int(row.generation) > seen  # reported by an attempt whose cursor was lost
        old = row.previous if redone else row.balance
        if old is None or int(old) != balance:
            shown = "none" if old is None else int(old)
            changes.append(Change(f"{account_id}:{shown}->{balance}:{generation}", account_id))
            connection.execute(
                update(snapshot)
                .where(snapshot.c.account_id == account_id)
                .values(balance=balance, previous=old, generation=generation)
            )
        elif int(row.balance) != balance:
            connection.execute(
                update(snapshot)
                .where(snapshot.c.account_id == account_id)
                .values(balance=balance, generation=seen)
            )  # the lost attempt's report was wrong to begin with: back to unchanged
    return ChangesPage(changes, snapshot_cursor(generation))


def _restart(
    connection: Connection, schema: Schema, balances: dict[str, int], generation: int
) -> None:
    """Start the snapshot over at `generation`: every account's balance, reported as seen."""
    snapshot = schema.snapshot
    assert snapshot is not None
    connection.execute(delete(snapshot))
    accounts = list(balances)
    for start in range(0, len(accounts), CHUNK):
        rows = [
            {"account_id": a, "balance": balances[a], "previous": None, "generation": generation}
            for a in accounts[start : start + CHUNK]
        ]
        connection.execute(insert(snapshot), rows)


def _insert(
    connection: Connection,
    schema: Schema,
    account_id: str,
    balance: int,
    previous: int | None,
    generation: int,
) -> None:
    assert schema.snapshot is not None
    connection.execute(
        insert(schema.snapshot).values(
            account_id=account_id, balance=balance, previous=previous, generation=generation
        )
    )


def _start(newest: Any) -> str:
    """The cursor of "from now on": past the newest change there is by the overlap, so the
    first poll's window starts exactly there and reports none of what came before."""
    return time_cursor(None if newest is None else shifted(newest, OVERLAP))


def _not_ours(ledger: Ledger) -> ColumnElement[bool]:
    """Ledger rows syncd did not write: no key, or (with a reason column) no syncd tag."""
    if ledger.reason is None:
        return ledger.key.is_(None)
    ours = and_(ledger.key.is_not(None), ledger.reason.startswith(SYNCD_TAG, autoescape=True))
    return or_(ledger.key.is_(None), ledger.reason.is_(None), not_(ours))


def _syncd_states(connection: Connection, schema: Schema, states: Sequence[str]) -> set[str]:
    """Which of these row states are exactly as syncd's own writes left them."""
    column = schema.applied.c.state_after
    found: set[str] = set()
    for start in range(0, len(states), CHUNK):
        chunk = list(states[start : start + CHUNK])
        found |= {str(s) for s in connection.scalars(select(column).where(column.in_(chunk)))}
    return found


def _newest(mark: Any, times: Iterable[Any]) -> Any:
    """The newest of the old watermark and the times just read (None when there is none)."""
    newest = mark
    for moment in times:
        if moment is not None and (newest is None or moment > newest):
            newest = moment
    return newest
