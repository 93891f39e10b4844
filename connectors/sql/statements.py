"""The sql connector's units of work: plain functions `(connection, schema, ...) -> value`,
each run by `SqlClient.run` inside one transaction in a worker thread.

Every statement is SQLAlchemy Core over the reflected tables: configured names are quoted
identifiers, values are bound parameters.

Writes, exactly once per operation id `key`:
- ledger mode: one ledger row carrying `key` in the key column (unique): a replay finds it
  (or, racing, hits the unique constraint) and changes nothing;
- column mode: a compare-and-set of the points column (on the version column when there is
  one, else on the points read) plus a row in syncd's `applied_table`, in one transaction: a
  replay finds that row. 0 rows updated means the till changed the account between the read
  and the write: ConflictError, nothing written.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    DateTime,
    Integer,
    Select,
    String,
    Table,
    cast,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from connectors.base import ExternalAccount, ReadBack, ReadBackResult, WriteResult
from connectors.sql.mapping import coerce_id, db_time, state_of, time_text, to_account
from connectors.sql.schema import Schema
from syncd.errors import ConflictError, NotFoundError, SkipError
from syncd.reconcile.keys import email_key, phone_key

_IDS = uuid.UUID("0c8e7f1e-59a4-4d1f-b3f2-5a3f0de4c8a1")  # namespace of ids syncd makes up


# -- reading ---------------------------------------------------------------------------------------


def balance_of(schema: Schema) -> ColumnElement[Any]:
    """The balance of the account row in the enclosing query: its points column, or the sum of
    its rows in the ledger (or balance view), 0 when it has none."""
    ledger = schema.ledger
    if ledger is None:
        assert schema.points is not None
        return func.coalesce(schema.points, 0)
    total = (
        select(func.sum(ledger.balance_points))
        .where(ledger.balance_account == schema.id)
        .scalar_subquery()
    )
    return func.coalesce(total, 0)


def version_of(schema: Schema) -> ColumnElement[Any] | None:
    """What changes when the account changes: the version column, else updated_at; in ledger
    mode the newest ledger row's id."""
    if schema.ledger is not None:
        ledger = schema.ledger
        return select(func.max(ledger.id)).where(ledger.account == schema.id).scalar_subquery()
    return schema.version if schema.version is not None else schema.updated_at


def accounts_query(schema: Schema) -> Select[Any]:
    """id, email, phone, name, balance, version of every account, one query."""
    columns: list[ColumnElement[Any]] = [schema.id.label("id")]
    for label, column in (("email", schema.email), ("phone", schema.phone), ("name", schema.name)):
        if column is not None:
            columns.append(column.label(label))
    columns.append(balance_of(schema).label("balance"))
    version = version_of(schema)
    if version is not None:
        columns.append(version.label("version"))
    return select(*columns).select_from(schema.accounts)


def accounts_page(
    connection: Connection, schema: Schema, after: str | None, size: int
) -> tuple[list[ExternalAccount], str | None]:
    """Up to `size` accounts with ids after `after`, in id order, and the last one's id when
    more follow (keyset paging: one query a page, stable while accounts are added)."""
    query = accounts_query(schema).order_by(schema.id).limit(size + 1)
    if after is not None:
        last = coerce_id(schema.id, after)
        if last is None:
            raise ValueError(f"not a sql page cursor: {after!r}")
        query = query.where(schema.id > last)
    rows = connection.execute(query).mappings().all()
    accounts = [to_account(row) for row in rows[:size]]
    return accounts, (accounts[-1].id if len(rows) > size else None)


def one_account(connection: Connection, schema: Schema, account_id: str) -> ExternalAccount:
    """One account read fresh; NotFoundError when no row has that id."""
    key = coerce_id(schema.id, account_id)
    row = None
    if key is not None:
        row = connection.execute(accounts_query(schema).where(schema.id == key)).mappings().first()
    if row is None:
        raise NotFoundError(f"no account {account_id!r}", remote="", account=account_id)
    return to_account(row)


def find_accounts(
    connection: Connection, schema: Schema, key: str, value: str
) -> list[ExternalAccount]:
    """Accounts whose email (any case) or phone (compared in E.164) equals `value`."""
    if key == "email":
        email = email_key(value)
        if schema.email is None or email is None:
            return []
        query = accounts_query(schema).where(func.lower(func.trim(schema.email)) == email)
        return [to_account(r) for r in connection.execute(query.order_by(schema.id)).mappings()]
    if key == "phone":
        phone = phone_key(value)
        if schema.phone is None or phone is None:
            return []
        # Stored phones may be written any way ("(415) 555-0123"): narrow by the last four
        # digits in SQL, then compare in E.164 here.
        stored = cast(schema.phone, String)  # a phone kept as a number still matches
        query = accounts_query(schema).where(stored.like(f"%{phone[-4:]}"))
        rows = connection.execute(query.order_by(schema.id)).mappings()
        return [a for a in map(to_account, rows) if a.phone == phone]
    raise ValueError(f"sql cannot find accounts by {key!r}: use 'email' or 'phone'")


# -- creating ----------------------------------------------------------------------------------


def create_account(
    connection: Connection,
    schema: Schema,
    *,
    email: str | None,
    phone: str | None,
    name: str | None,
    key: str,
    now: datetime,
) -> ExternalAccount:
    """A new account row (balance 0), recorded under `key` in the applied table in the same
    transaction; a replay returns the account made the first time. Required timestamp
    columns without a default (a `created_at`) get the current time; any other required
    column syncd has no value for is a SkipError naming it."""
    applied = schema.applied
    made = connection.execute(
        select(applied.c.account_id).where(applied.c.operation_id == key)
    ).scalar()
    if made is not None:
        return one_account(connection, schema, str(made))
    values = _new_account_values(schema, email=email, phone=phone, name=name, now=now)
    if not _database_assigns(schema, connection.dialect.name):
        if not isinstance(schema.id.type, String):
            raise SkipError(
                f"cannot create accounts in {schema.accounts.name}: its id column "
                f"{schema.id.name} has no default and is not text",
                remote="",
            )
        values[schema.id.name] = str(uuid.uuid5(_IDS, key))
    new_id = _insert(connection, schema.accounts, values, schema.id)
    account = one_account(connection, schema, str(new_id))
    state = _read_state(connection, schema, new_id) if schema.ledger is None else None
    _record(
        connection,
        schema,
        operation_id=key,
        kind="create",
        account_id=account.id,
        delta=0,
        state_after=state.text if state else None,
        applied_at=now,
    )
    return account


def _new_account_values(
    schema: Schema,
    *,
    email: str | None,
    phone: str | None,
    name: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The new row's values but its id: match keys, zero points, required timestamps."""
    values: dict[str, Any] = {}
    for column, value in ((schema.email, email), (schema.phone, phone), (schema.name, name)):
        if column is not None and value:
            values[column.name] = value
    if schema.points is not None:
        values[schema.points.name] = 0
    if schema.version is not None and schema.version.server_default is None:
        values[schema.version.name] = 0
    if schema.updated_at is not None:
        values[schema.updated_at.name] = db_time(schema.updated_at, now)
    for column in schema.accounts.c:
        needed = not column.nullable and column.server_default is None
        if not needed or column.name in values or column is schema.id:
            continue
        if isinstance(column.type, DateTime):  # a required created_at: now
            values[column.name] = db_time(column, now)
        else:
            raise SkipError(
                f"cannot create accounts in {schema.accounts.name}: column {column.name} "
                "needs a value syncd does not have",
                remote="",
            )
    return values


def _database_assigns(schema: Schema, dialect: str) -> bool:
    """Whether the database numbers new rows itself: a default (a sequence), an identity, or
    SQLite's rowid (an integer primary key of its own)."""
    column = schema.id
    if column.server_default is not None or column.identity is not None:
        return True
    only_key = list(schema.accounts.primary_key.columns) == [column]
    return dialect == "sqlite" and only_key and isinstance(column.type, Integer)


# -- writing -----------------------------------------------------------------------------------


def apply_ledger(
    connection: Connection,
    schema: Schema,
    account_id: str,
    delta: int,
    *,
    key: str,
    reason: str,
    now: datetime,
) -> WriteResult:
    """One ledger row of `delta` points keyed `key`; nothing if that key is there already."""
    ledger = schema.ledger
    assert ledger is not None
    found = connection.execute(select(ledger.id).where(ledger.key == key)).scalar()
    if found is not None:
        return WriteResult(str(found))
    _existing(connection, schema, account_id)
    values: dict[str, Any] = {
        ledger.account.name: coerce_id(ledger.account, account_id),
        ledger.points.name: delta,
        ledger.key.name: key,
    }
    if ledger.reason is not None:
        length = getattr(ledger.reason.type, "length", None)
        values[ledger.reason.name] = reason[:length] if length else reason
    if ledger.created_at is not None and ledger.created_at.server_default is None:
        values[ledger.created_at.name] = db_time(ledger.created_at, now)
    row_id = _insert(connection, ledger.table, values, ledger.id)
    shift_snapshot(connection, schema, account_id, delta)
    return WriteResult(str(row_id))


def apply_column(
    connection: Connection, schema: Schema, account_id: str, delta: int, *, key: str, now: datetime
) -> WriteResult:
    """Compare-and-set the points column by `delta` and record `key`; nothing if recorded.

    The applied row keeps the row's state before and after the write: the change feed leaves
    out rows syncd left as they are, and still reports a till change syncd's write overwrote
    before any poll saw it (see `changes.py`)."""
    applied, points, version = schema.applied, schema.points, schema.version
    assert points is not None
    done = connection.execute(
        select(applied.c.operation_id).where(applied.c.operation_id == key)
    ).scalar()
    if done is not None:
        return WriteResult()
    member = coerce_id(schema.id, account_id)
    before = None if member is None else _read_state(connection, schema, member)
    if before is None:
        raise NotFoundError(f"no account {account_id!r}", remote="", account=account_id)
    values: dict[str, Any] = {points.name: int(before.points or 0) + delta}
    cas = update(schema.accounts).where(schema.id == member)
    if version is not None:
        cas = cas.where(version.is_not_distinct_from(before.version))
        values[version.name] = func.coalesce(version, 0) + 1
    else:
        cas = cas.where(points.is_not_distinct_from(before.points))
    if schema.updated_at is not None:
        values[schema.updated_at.name] = db_time(schema.updated_at, now)
    if connection.execute(cas.values(values)).rowcount != 1:
        raise ConflictError(
            "the account changed between syncd's read and its write (compare-and-set lost)",
            remote="",
            account=account_id,
        )
    after = _read_state(connection, schema, member)
    assert after is not None
    _record(
        connection,
        schema,
        operation_id=key,
        kind="write",
        account_id=account_id,
        delta=delta,
        state_after=after.text,
        state_before=before.text,
        before_at=time_text(before.updated_at) or None,
        applied_at=now,
    )
    shift_snapshot(connection, schema, account_id, delta)
    return WriteResult()


def read_back(connection: Connection, schema: Schema, key: str) -> ReadBackResult:
    """APPLIED when the write keyed `key` is in the ledger (or the applied table)."""
    if schema.ledger is not None:
        ledger = schema.ledger
        found = connection.execute(select(ledger.id).where(ledger.key == key)).scalar()
        if found is not None:
            return ReadBackResult(ReadBack.APPLIED, str(found))
        return ReadBackResult(ReadBack.ABSENT)
    applied = schema.applied
    done = connection.execute(
        select(applied.c.operation_id).where(applied.c.operation_id == key)
    ).scalar()
    return ReadBackResult(ReadBack.APPLIED if done is not None else ReadBack.ABSENT)


def shift_snapshot(connection: Connection, schema: Schema, account_id: str, delta: int) -> None:
    """Move the snapshot by syncd's own write, so the `snapshot` feed does not report it."""
    snapshot = schema.snapshot
    if snapshot is None:
        return
    connection.execute(
        update(snapshot)
        .where(snapshot.c.account_id == account_id)
        .values(
            balance=snapshot.c.balance + delta,
            previous=snapshot.c.previous + delta,
        )
    )


def _existing(connection: Connection, schema: Schema, account_id: str) -> Any:
    """The account's id as the column holds it; NotFoundError when there is no such row."""
    member = coerce_id(schema.id, account_id)
    found = None
    if member is not None:
        found = connection.execute(select(schema.id).where(schema.id == member)).first()
    if found is None:
        raise NotFoundError(f"no account {account_id!r}", remote="", account=account_id)
    return member


@dataclass(frozen=True)
class RowState:
    """An account row's points, version and updated_at, and `state_of` them."""

    points: Any
    version: Any
    updated_at: Any
    text: str


def _read_state(connection: Connection, schema: Schema, member: Any) -> RowState | None:
    """The account row's state as the database holds it now (after triggers, if any)."""
    columns = [c for c in (schema.points, schema.version, schema.updated_at) if c is not None]
    row = connection.execute(select(*columns).where(schema.id == member)).first()
    if row is None:
        return None
    found = dict(zip([c.name for c in columns], row, strict=True))

    def value(column: Column[Any] | None) -> Any:
        return None if column is None else found[column.name]

    points, version, updated_at = (
        value(schema.points),
        value(schema.version),
        value(schema.updated_at),
    )
    return RowState(points, version, updated_at, state_of(member, updated_at, version, points))


def _record(connection: Connection, schema: Schema, **values: Any) -> None:
    """One row of syncd's applied table (operation_id, kind, account_id, delta, states...)."""
    connection.execute(insert(schema.applied).values(**values))


def _insert(connection: Connection, table: Table, values: dict[str, Any], id_column: Any) -> Any:
    """Insert one row and return its id (RETURNING where the database has it)."""
    if connection.dialect.insert_returning:
        return connection.execute(insert(table).values(values).returning(id_column)).scalar_one()
    result = connection.execute(insert(table).values(values))
    return result.inserted_primary_key[0] if result.inserted_primary_key else values[id_column.name]
