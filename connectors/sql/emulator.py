"""`SqlTill`: a demo POS database and the till that changes it: the sql connector's double.

The till creates the schema the sql connector's defaults describe, seeds members, and
changes balances as a point-of-sale would: in ledger mode a ledger row with no key (sales,
redemptions, corrections), in column mode an update of the points column that bumps
`version` and `updated_at`. It reads balances back as the POS sees them, and counts how
often each of syncd's writes landed (`applied_count`, `operation_ids`). Being a demo, it
keeps a SQLite file in WAL mode and does not wait for the disk on its own commits.

    members        id, email, phone, name, created_at  (+ points, version, updated_at in
                   column mode); integer ids, or text ids with `text_ids=True`
    points_ledger  id, member_id, points, operation_id (unique), reason, created_at
                   (ledger mode)

Fault injection, for the contract suite. Both hook SQLAlchemy's events on the `Engine`
class, so they reach the connector's own engine without touching its code, and both act only
on other engines connected to this same database (the till's own engine is left alone):

- `fail_after_commit(True)`: each COMMIT of a write by another engine really commits, then
  raises `OperationalError` ("server closed the connection unexpectedly") and invalidates the
  connection — a committed write whose answer was lost, exactly what a dropped connection
  during COMMIT looks like to the client. (ConnectionEvents "commit" runs just before the
  driver's commit; the listener performs that commit itself, then raises.)
- `change_before_next_write(account, points)`: just before another engine's next INSERT,
  UPDATE or DELETE on this database, the till makes a sale on its own connection and commits
  it — a till change landing between syncd's read and its write.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import OperationalError

from connectors.sql.settings import Mode
from syncd.clock import utcnow

LOST = "server closed the connection unexpectedly"
TAG = "syncd:"  # the start of the reason of every ledger row syncd writes
_WRITES = ("INSERT", "UPDATE", "DELETE")


def demo_tables(mode: Mode, *, text_ids: bool = False) -> tuple[MetaData, Table, Table | None]:
    """The demo POS schema: members (and, in ledger mode, points_ledger)."""
    metadata = MetaData()
    id_type: Integer | String = String(40) if text_ids else Integer()
    columns: list[Column[Any]] = [
        Column("id", id_type, primary_key=True, autoincrement=not text_ids),
        Column("email", String(320)),
        Column("phone", String(40)),
        Column("name", String(200)),
        Column("created_at", DateTime, nullable=False),
    ]
    if mode == "column":
        columns += [
            Column("points", Integer, nullable=False, server_default="0"),
            Column("version", Integer, nullable=False, server_default="0"),
            Column("updated_at", DateTime, nullable=False),
        ]
    members = Table("members", metadata, *columns)
    if mode == "column":
        return metadata, members, None
    ledger = Table(
        "points_ledger",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("member_id", id_type, ForeignKey("members.id"), nullable=False, index=True),
        Column("points", Integer, nullable=False),
        Column("operation_id", String(255), unique=True),
        Column("reason", String(500)),
        Column("created_at", DateTime, nullable=False, index=True),
    )
    return metadata, members, ledger


class SqlTill:
    """A POS database of members and points, and the till that changes their balances."""

    def __init__(
        self,
        url: str,
        mode: Mode,
        *,
        text_ids: bool = False,
        clock: Callable[[], datetime] = utcnow,
        applied_table: str = "syncd_applied",
    ) -> None:
        self.url = url
        self.mode = mode
        self.text_ids = text_ids
        self.clock = clock
        self.applied_table = applied_table
        parsed = make_url(url)
        args: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            args = {"connect_args": {"timeout": 10, "check_same_thread": False}}
        self.engine = create_engine(parsed, **args)
        if parsed.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pos_pragmas)
        elif parsed.get_backend_name() == "postgresql":
            event.listen(self.engine, "connect", _postgres_pos_session)
        self.metadata, self.members, self.ledger = demo_tables(mode, text_ids=text_ids)
        self.metadata.create_all(self.engine)
        self._database = _identity(parsed)
        self._failing = False
        self._interleaving = False
        self._pending: tuple[str, int] | None = None

    def close(self) -> None:
        self.fail_after_commit(False)
        if self._interleaving:
            event.remove(Engine, "before_cursor_execute", self._interleave)
            self._interleaving = False
        self.engine.dispose()

    def connector_settings(self, name: str = "till", **extra: Any) -> dict[str, Any]:
        """A `[[connectors]]` table for the sql connector on this database."""
        values: dict[str, Any] = {"name": name, "type": "sql", "url": self.url, "mode": self.mode}
        if self.mode == "ledger":
            values["ledger_table"] = "points_ledger"
        else:
            values |= {
                "points_column": "points",
                "version_column": "version",
                "updated_at_column": "updated_at",
            }
        return values | extra

    # -- members and the till ------------------------------------------------------------------

    def seed(self, specs: Iterable[Mapping[str, Any]]) -> list[str]:
        """Members from {email, phone, name, balance} (in ledger mode the balance is an
        opening ledger row); their ids."""
        ids: list[str] = []
        now = self._now()
        with self.engine.begin() as connection:
            for spec in specs:
                values: dict[str, Any] = {
                    "email": spec.get("email"),
                    "phone": spec.get("phone"),
                    "name": spec.get("name"),
                    "created_at": now,
                }
                if self.text_ids:
                    values["id"] = str(spec.get("id") or f"M-{uuid.uuid4().hex[:10]}")
                balance = int(spec.get("balance") or 0)
                if self.mode == "column":
                    values |= {"points": balance, "version": 1, "updated_at": now}
                made = connection.execute(
                    insert(self.members).values(values).returning(self.members.c.id)
                ).scalar_one()
                if self.ledger is not None and balance:
                    self._ledger_row(connection, made, balance, "opening balance", now)
                ids.append(str(made))
        return ids

    def sale(self, account_id: str, points: int) -> None:
        """Points earned at the till."""
        self._change(account_id, points, f"sale: +{points}")

    def redeem(self, account_id: str, points: int) -> None:
        """Points spent at the till."""
        self._change(account_id, -points, f"redemption: -{points}")

    def correct(self, account_id: str, points: int) -> None:
        """A manager's correction, either way."""
        self._change(account_id, points, f"correction: {points:+d}")

    def balance(self, account_id: str) -> int:
        """The member's balance as the POS sees it."""
        with self.engine.connect() as connection:
            return int(connection.execute(self._balance_query(account_id)).scalar() or 0)

    def accounts(self) -> list[dict[str, Any]]:
        """Every member with its balance, in id order."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(self.members).order_by(self.members.c.id)).mappings()
            found = [dict(row) for row in rows]
            for member in found:
                member["id"] = str(member["id"])
                balance = connection.execute(self._balance_query(member["id"])).scalar()
                member["balance"] = int(balance or 0)
        return found

    def applied_count(self, prefix: str) -> int:
        """How many of syncd's writes landed whose operation id starts with `prefix`, or whose
        tag does when `prefix` starts with `syncd:` (so `applied_count("syncd:")` counts them
        all): ledger rows written by syncd, or write rows of syncd's applied table."""
        return len([key for key in self.operation_ids() if key.startswith(_key_part(prefix))])

    def operation_ids(self) -> list[str]:
        """The operation id of every write of syncd's that landed, one per landing (a write
        landed twice would be listed twice)."""
        with self.engine.connect() as connection:
            if self.ledger is not None:
                c = self.ledger.c
                ours = select(c.operation_id).where(
                    c.operation_id.is_not(None), c.reason.startswith(TAG, autoescape=True)
                )
            else:
                if not inspect(connection).has_table(self.applied_table):
                    return []
                applied = Table(self.applied_table, MetaData(), autoload_with=connection)
                ours = select(applied.c.operation_id).where(applied.c.kind == "write")
            return [str(key) for key in connection.scalars(ours.order_by(ours.selected_columns[0]))]

    def _change(self, account_id: str, points: int, reason: str) -> None:
        now = self._now()
        member = int(account_id) if not self.text_ids else account_id
        with self.engine.begin() as connection:
            if self.ledger is not None:
                self._ledger_row(connection, member, points, reason, now)
                return
            c = self.members.c
            changed = connection.execute(
                update(self.members)
                .where(c.id == member)
                .values(points=c.points + points, version=c.version + 1, updated_at=now)
            )
            if changed.rowcount != 1:
                raise KeyError(f"no member {account_id!r}")

    def _ledger_row(
        self, connection: Connection, member: Any, points: int, reason: str, now: datetime
    ) -> None:
        assert self.ledger is not None
        connection.execute(
            insert(self.ledger).values(
                member_id=member, points=points, operation_id=None, reason=reason, created_at=now
            )
        )

    def _balance_query(self, account_id: str) -> Any:
        member = int(account_id) if not self.text_ids else account_id
        if self.ledger is None:
            return select(self.members.c.points).where(self.members.c.id == member)
        rows = self.ledger.c
        return select(func.sum(rows.points)).where(rows.member_id == member)

    def _now(self) -> datetime:
        return self.clock().replace(tzinfo=None)

    # -- faults --------------------------------------------------------------------------------

    def fail_after_commit(self, on: bool) -> None:
        """While on, other engines' commits on this database land, then raise as if the
        connection dropped before the answer (see the module docstring)."""
        if on and not self._failing:
            event.listen(Engine, "commit", self._commit_then_fail)
        elif not on and self._failing:
            event.remove(Engine, "commit", self._commit_then_fail)
        self._failing = on

    def change_before_next_write(self, account_id: str, points: int) -> None:
        """Make a sale of `points` just before another engine's next write on this database."""
        # The listener stays until close(): SQLAlchemy cannot remove it while it runs.
        if not self._interleaving:
            event.listen(Engine, "before_cursor_execute", self._interleave)
            self._interleaving = True
        self._pending = (account_id, points)

    def _foreign(self, connection: Connection) -> bool:
        engine = connection.engine
        return engine is not self.engine and _identity(engine.url) == self._database

    def _commit_then_fail(self, connection: Connection) -> None:
        if not self._foreign(connection):
            return
        dbapi = connection.connection.dbapi_connection
        assert dbapi is not None
        dbapi.commit()
        driver_error = connection.dialect.loaded_dbapi.OperationalError(LOST)
        connection.invalidate()
        raise OperationalError("COMMIT", None, driver_error, connection_invalidated=True)

    def _interleave(self, connection: Connection, *args: Any) -> None:
        statement = str(args[1]).lstrip().upper()
        if self._pending is None or not self._foreign(connection):
            return
        if not statement.startswith(_WRITES):
            return
        account_id, points = self._pending
        self._pending = None
        self.sale(account_id, points)


def _key_part(prefix: str) -> str:
    return prefix[len(TAG) :] if prefix.startswith(TAG) else prefix


def _sqlite_pos_pragmas(dbapi_connection: Any, record: Any) -> None:
    """The demo POS keeps its SQLite file in WAL mode (readers never wait for the till) and
    does not sync to disk on every sale (it is a demo)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _postgres_pos_session(dbapi_connection: Any, record: Any) -> None:
    """The demo POS's own commits do not wait for the disk (it is a demo; syncd's do)."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    dbapi_connection.commit()


def _identity(url: URL) -> tuple[Any, ...]:
    """What names one database, whatever the driver: backend, host, port, database, query."""
    return (
        url.get_backend_name(),
        url.host,
        url.port,
        url.database,
        tuple(sorted((k, str(v)) for k, v in url.query.items())),
    )
