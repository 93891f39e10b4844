"""The tables the sql connector works with: the POS's own (reflected, checked, never altered)
and syncd's own two (created when `create_tables` allows).

`load_schema` reflects the configured tables and columns and says exactly what is missing, in
one line (FatalError: nothing will work until the config or the database is fixed). Ledger
mode also needs a unique constraint on the key column: it is what makes a replayed write a
no-op instead of a second row.

syncd's own tables:

    applied_table   operation_id (primary key), kind ("write" | "create"), account_id, delta,
                    and in column mode the account row's state as syncd left it (`state_after`:
                    the change feed leaves rows in exactly that state out) and as syncd found
                    it (`state_before`, `before_at`: its updated_at), applied_at
    snapshot_table  account_id (primary key), balance, previous, generation: the balances the
                    `snapshot` change feed last reported (see `changes.py`)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    inspect,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import NoSuchTableError

from connectors.sql.settings import SqlSettings
from syncd.errors import FatalError

KEY_LENGTH = 255
STATE_LENGTH = 512


@dataclass(frozen=True)
class Ledger:
    """Ledger mode: the table syncd inserts into, and where balances are read from."""

    table: Table
    id: Column[Any]
    account: Column[Any]
    points: Column[Any]
    key: Column[Any]
    reason: Column[Any] | None
    created_at: Column[Any] | None
    balance_table: Table
    balance_account: Column[Any]
    balance_points: Column[Any]


@dataclass(frozen=True)
class Schema:
    """Every table and column the connector uses, reflected from the database."""

    accounts: Table
    id: Column[Any]
    email: Column[Any] | None
    phone: Column[Any] | None
    name: Column[Any] | None
    points: Column[Any] | None
    version: Column[Any] | None
    updated_at: Column[Any] | None
    ledger: Ledger | None
    applied: Table
    snapshot: Table | None

    @property
    def id_is_integer(self) -> bool:
        return isinstance(self.id.type, Integer)


def applied_table(metadata: MetaData, name: str) -> Table:
    """syncd's record of its writes and creations in this database, keyed by operation id."""
    return Table(
        name,
        metadata,
        Column("operation_id", String(KEY_LENGTH), primary_key=True),
        Column("kind", String(16), nullable=False),
        Column("account_id", String(KEY_LENGTH), nullable=False),
        Column("delta", BigInteger, nullable=False),
        Column("state_after", String(STATE_LENGTH)),
        Column("state_before", String(STATE_LENGTH)),
        Column("before_at", String(64)),
        Column("applied_at", DateTime(timezone=True), nullable=False),
        Index(f"ix_{name}_state_after", "state_after"),
    )


def snapshot_table(metadata: MetaData, name: str) -> Table:
    """The balances the `snapshot` change feed last reported, and the one before."""
    return Table(
        name,
        metadata,
        Column("account_id", String(KEY_LENGTH), primary_key=True),
        Column("balance", BigInteger, nullable=False),
        Column("previous", BigInteger),
        Column("generation", BigInteger, nullable=False),
    )


class _Reflector:
    """Reflects the configured tables, collecting one line per problem."""

    def __init__(self, connection: Connection, settings: SqlSettings) -> None:
        self.connection = connection
        self.settings = settings
        self.metadata = MetaData(schema=settings.schema_)
        self.problems: list[str] = []

    def table(self, name: str, key: str) -> Table | None:
        try:
            return Table(name, self.metadata, autoload_with=self.connection, resolve_fks=False)
        except NoSuchTableError:
            where = f" in schema {self.settings.schema_}" if self.settings.schema_ else ""
            self.problems.append(
                f"table {name!r} not found{where} ({key}): name an existing table or view"
            )
            return None

    def column(
        self, table: Table | None, name: str | None, key: str, *, optional: bool = False
    ) -> Column[Any] | None:
        if table is None or name is None:
            return None
        found = table.c.get(name)
        if found is None:
            has = ", ".join(c.name for c in table.c)
            blank = ' (or "" if it has none)' if optional else ""
            self.problems.append(
                f"column {table.name}.{name} not found ({key}): it has {has}; "
                f"set {key} to one of them{blank}"
            )
        return found

    def numeric(self, column: Column[Any] | None, key: str) -> None:
        # Text, times and flags are refused; an untyped column (a SQLite view's expression)
        # is taken on trust.
        if column is not None and isinstance(column.type, String | Date | DateTime | Boolean):
            self.problems.append(
                f"column {column.table.name}.{column.name} ({key}) holds {column.type}, "
                "not whole numbers: name an integer column"
            )

    def unique(self, column: Column[Any] | None, key: str) -> None:
        """The ledger key must be unique on its own: that is what dedupes a replayed write."""
        if column is None:
            return
        table = column.table
        inspector = inspect(self.connection)
        name, schema = table.name, table.schema
        keys: list[list[str | None]] = [
            list(inspector.get_pk_constraint(name, schema).get("constrained_columns") or [])
        ]
        keys += [list(u["column_names"]) for u in inspector.get_unique_constraints(name, schema)]
        keys += [
            list(i["column_names"]) for i in inspector.get_indexes(name, schema) if i["unique"]
        ]
        if [column.name] not in keys:
            self.problems.append(
                f"column {table.name}.{column.name} ({key}) has no unique constraint, so a "
                f"replayed write would land twice: CREATE UNIQUE INDEX ON {table.name} "
                f"({column.name})"
            )


def load_schema(
    connection: Connection, settings: SqlSettings, *, remote: str
) -> tuple[Schema, list[str]]:
    """The reflected schema and one line per own table created; FatalError naming every
    missing table or column (one line)."""
    check = _Reflector(connection, settings)
    accounts = check.table(settings.accounts_table, "accounts_table")
    column = check.column
    id_column = column(accounts, settings.id_column, "id_column")
    email = column(accounts, settings.email_column, "email_column", optional=True)
    phone = column(accounts, settings.phone_column, "phone_column", optional=True)
    name = column(accounts, settings.name_column, "name_column", optional=True)
    points = column(accounts, settings.points_column, "points_column")
    version = column(accounts, settings.version_column, "version_column", optional=True)
    updated_at = column(accounts, settings.updated_at_column, "updated_at_column", optional=True)
    check.numeric(points, "points_column")
    check.numeric(version, "version_column")
    ledger = _ledger(check, settings) if settings.mode == "ledger" else None
    if check.problems:
        raise FatalError("; ".join(check.problems), remote=remote)
    applied, snapshot, created = _own_tables(check, settings)
    if check.problems:
        raise FatalError("; ".join(check.problems), remote=remote)
    assert accounts is not None and id_column is not None and applied is not None
    schema = Schema(
        accounts=accounts,
        id=id_column,
        email=email,
        phone=phone,
        name=name,
        points=points,
        version=version,
        updated_at=updated_at,
        ledger=ledger,
        applied=applied,
        snapshot=snapshot,
    )
    return schema, created


def _ledger(check: _Reflector, settings: SqlSettings) -> Ledger | None:
    assert settings.ledger_table is not None
    table = check.table(settings.ledger_table, "ledger_table")
    column = check.column
    id_column = column(table, settings.ledger_id_column, "ledger_id_column")
    account = column(table, settings.ledger_account_column, "ledger_account_column")
    points = column(table, settings.ledger_points_column, "ledger_points_column")
    key = column(table, settings.ledger_key_column, "ledger_key_column")
    reason = column(table, settings.ledger_reason_column, "ledger_reason_column", optional=True)
    created_at = column(
        table, settings.ledger_created_at_column, "ledger_created_at_column", optional=True
    )
    check.numeric(points, "ledger_points_column")
    check.unique(key, "ledger_key_column")
    view_name, view_account, view_points = settings.balance_source
    if settings.balance_view:
        view = check.table(view_name, "balance_view")
        balance_account = column(view, view_account, "balance_view_account_column")
        balance_points = column(view, view_points, "balance_view_points_column")
        check.numeric(balance_points, "balance_view_points_column")
    else:
        view, balance_account, balance_points = table, account, points
    if (
        table is None
        or view is None
        or id_column is None
        or account is None
        or points is None
        or key is None
        or balance_account is None
        or balance_points is None
    ):
        return None
    return Ledger(
        table,
        id_column,
        account,
        points,
        key,
        reason,
        created_at,
        view,
        balance_account,
        balance_points,
    )


def _own_tables(
    check: _Reflector, settings: SqlSettings
) -> tuple[Table | None, Table | None, list[str]]:
    """syncd's tables, reflected or created; checked against what syncd writes into them."""
    makers = {settings.applied_table: ("applied_table", applied_table)}
    if settings.changes == "snapshot":
        makers[settings.snapshot_table] = ("snapshot_table", snapshot_table)
    inspector = inspect(check.connection)
    missing = [name for name in makers if not inspector.has_table(name, schema=settings.schema_)]
    if missing and not settings.create_tables:
        check.problems.append(
            f"syncd's own table {' and '.join(missing)} does not exist and create_tables = "
            "false: create it (see the sql connector's docs) or set create_tables = true"
        )
        return None, None, []
    created: list[str] = []
    found: dict[str, Table] = {}
    for name, (key, make) in makers.items():
        if name in missing:
            own = make(check.metadata, name)
            own.create(check.connection)
            created.append(f"created table {own.fullname} (syncd's own, for the sql connector)")
            found[name] = own
            continue
        reflected = check.table(name, key)
        for wanted in make(MetaData(), name).c:
            check.column(reflected, wanted.name, f"{key}, syncd's own table")
        if reflected is not None:
            found[name] = reflected
    return found.get(settings.applied_table), found.get(settings.snapshot_table), created
