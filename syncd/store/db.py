"""Engines, sessions and schema upgrades for the store (SQLite by default, PostgreSQL too).

Nothing here runs at import: the caller builds one engine at start from `database.url`,
calls `upgrade(engine)`, then opens short `session_scope`s. Never hold a session open across
a remote call: on SQLite every transaction takes the write lock (`BEGIN IMMEDIATE`).
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool
from sqlmodel import Session, SQLModel

from syncd.errors import ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"
# busy_timeout first: switching to WAL needs a lock, and should wait for it like any other.
SQLITE_PRAGMAS = (
    "busy_timeout=5000",
    "journal_mode=WAL",
    "foreign_keys=ON",
    "synchronous=NORMAL",
    "cache_size=-8192",  # 8 MiB a connection (default 2): fewer reads of a backfill's lookups
)
PG_CONNECT_TIMEOUT_SECONDS = 10
MIGRATION_LOCK_KEY = 0x5_9C_D0_01  # pg advisory lock: one replica migrates at a time
_EXAMPLES = "use e.g. sqlite:///syncd.db or postgresql://user:password@host:5432/syncd"


def make_engine(url: str) -> Engine:
    """An engine for `url` (sqlite:// or postgresql://); raises ConfigError if it is malformed.

    Connects lazily: see `check_connection` and `upgrade` for an unreachable database.
    """
    parsed = _parse(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed)
        return _postgres_engine(parsed)
    except (ArgumentError, NoSuchModuleError, ImportError, TypeError, ValueError) as exc:
        reason = _hide(_first_line(exc), parsed)
        raise ConfigError(
            f"database.url: cannot use {_mask(url)} ({reason}): {_EXAMPLES}"
        ) from None


def check_connection(engine: Engine) -> None:
    """Open one connection and run `SELECT 1`; ConfigError (one line) if that fails."""
    with _connect(engine) as connection:
        connection.execute(text("SELECT 1"))


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration; a no-op when it is already there.

    Safe to call from several replicas at once: on PostgreSQL they take turns on an advisory
    lock, on SQLite on the write lock.
    """
    with _connect(engine) as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            connection.execute(lock, {"key": MIGRATION_LOCK_KEY})
        command.upgrade(alembic_config(connection), "head")


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic config for the shipped migrations, bound to `connection` (or `url`).

    For a new revision: `command.revision(alembic_config(url=...), autogenerate=True, message=...)`.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back if it raises.

    Objects stay usable after the block (`expire_on_commit=False`); re-read them before
    deciding anything new.
    """
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _parse(url: str) -> URL:
    """Parse and normalise `url`: psycopg 3 for PostgreSQL; only SQLite and PostgreSQL."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        reason = "the port is not a number" if isinstance(exc, ValueError) else "cannot parse it"
        raise ConfigError(
            f"database.url: {_mask(url)!r} is not a database URL ({reason}): {_EXAMPLES}"
        ) from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"database.url: {_mask(url)} is not SQLite or PostgreSQL, the databases syncd"
            f" keeps its state in: {_EXAMPLES}"
        )
    return parsed


def _sqlite_engine(url: URL) -> Engine:
    """SQLite in WAL mode, waiting up to 5 s for locks, with real (IMMEDIATE) transactions.

    Hot paths use `engine.begin()` (Core, one connection) rather than `session_scope`: the
    same BEGIN IMMEDIATE transaction without the ORM session's cost.

    An in-memory database lives on one shared connection so every thread sees it.
    """
    memory = url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
    kwargs: dict[str, Any] = {}
    if memory:
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    # No pool_pre_ping: a connection to a local file does not go stale the way a network one
    # does, and the ping was one more statement on every checkout, i.e. on every transaction.
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _on_sqlite_connect)
    if memory:
        event.listen(engine, "begin", _on_sqlite_begin)
    else:
        _take_turns(engine, _turns_of(str(Path(url.database or "").resolve())))
    return engine


def _on_sqlite_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    """Set the pragmas on each new connection and take over BEGIN from the sqlite3 module."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            _pragma(cursor, pragma)
    finally:
        cursor.close()


def _pragma(cursor: Any, pragma: str, *, attempts: int = 50) -> None:
    """Run one PRAGMA; while another process opens the same new file in WAL mode, SQLite can
    answer "database is locked" at once (without its busy handler): wait briefly and retry."""
    for attempt in range(attempts):
        try:
            cursor.execute(f"PRAGMA {pragma}")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(0.1)


def _on_sqlite_begin(connection: Connection) -> None:
    """Start every transaction holding the write lock, so read-then-write never races."""
    if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class _Turns:
    """The in-process turn of one SQLite file's writers: a plain lock (any thread may give
    it back, so a connection dropped elsewhere cannot keep it) that knows its holder, so a
    thread nesting transactions does not wait for itself."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: int | None = None

    def take(self) -> bool:
        """Wait for the turn; False when this thread holds it already, or after waiting as
        long as SQLite itself would (then SQLite's own lock decides, as before)."""
        me = threading.get_ident()
        if self._holder == me or not self._lock.acquire(timeout=BUSY_TIMEOUT_SECONDS):
            return False
        self._holder = me
        return True

    def give_back(self) -> None:
        self._holder = None
        self._lock.release()


BUSY_TIMEOUT_SECONDS = 5.0  # as busy_timeout=5000 in SQLITE_PRAGMAS
_TURNS: dict[str, _Turns] = {}
_TURNS_GUARD = threading.Lock()
_HELD = "syncd_turn"  # in a pooled connection's `info`: the turn its transaction holds


def _turns_of(path: str) -> _Turns:
    """The one turn of the SQLite file at `path`, shared by every engine of this process."""
    with _TURNS_GUARD:
        return _TURNS.setdefault(path, _Turns())


def _take_turns(engine: Engine, turns: _Turns) -> None:
    """Every transaction holds SQLite's write lock (BEGIN IMMEDIATE), so only one runs at a
    time anyway; inside one process they also queue for `turns`, from just before BEGIN until
    just after COMMIT or ROLLBACK. A thread that finds the file busy then waits for exactly
    the transaction ahead of it, instead of SQLite's busy handler, which sleeps in steps of
    1, 2, 5, 10, ... 100 ms between tries. That matters when the intake writes in a worker
    thread while the event loop runs the workers' transactions: a busy sleep on the loop
    stops every webhook and every sync for its whole length. Other processes (a reconcile
    beside the daemon) still meet at SQLite's lock and its busy_timeout."""

    def begin(connection: Connection) -> None:
        if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return
        took = turns.take()
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            if took:
                turns.give_back()
            raise
        if took:
            connection.connection.info[_HELD] = turns

    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        try:
            commit(dbapi_connection)
        finally:
            _give_back(_info(dbapi_connection))

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            rollback(dbapi_connection)
        finally:
            _give_back(_info(dbapi_connection))

    dialect.do_commit = do_commit  # type: ignore[method-assign]  # this engine's dialect only
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]
    event.listen(engine, "begin", begin)
    # A connection invalidated or returned while still holding the turn gives it back too.
    for name in ("checkin", "invalidate", "soft_invalidate", "close"):
        event.listen(engine.pool, name, _give_back_of_record)


def _give_back(info: dict[str, Any] | None) -> None:
    """Give back the turn a connection's transaction took, if it still holds one."""
    held = info.pop(_HELD, None) if info is not None else None
    if held is not None:
        held.give_back()


def _give_back_of_record(dbapi_connection: Any, record: Any, *rest: Any) -> None:
    _give_back(_info(record))


def _info(pooled: Any) -> dict[str, Any] | None:
    """A pooled connection's (or pool record's) `info`; None where there is none (the
    connection SQLAlchemy makes to learn the server's settings has no pool record)."""
    try:
        info: dict[str, Any] = pooled.info
    except (AttributeError, NotImplementedError):
        return None
    return info


def _postgres_engine(url: URL) -> Engine:
    """PostgreSQL through psycopg 3, giving up on a silent host after 10 s."""
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_SECONDS
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


@contextmanager
def _connect(engine: Engine) -> Iterator[Connection]:
    """A connection, or a one-line ConfigError saying why the database cannot be reached."""
    try:
        connection = engine.connect()
    except DBAPIError as exc:
        raise ConfigError(_unreachable(engine.url, exc)) from None
    with connection:
        yield connection


def _unreachable(url: URL, exc: DBAPIError) -> str:
    """One line: which database, why it failed (password masked), what to check."""
    shown = url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)
    reason = _first_line(exc.orig if exc.orig is not None else exc)
    reason = re.sub(r"^.*failed: ", "", reason)
    reason = re.sub(r"^(FATAL|ERROR):\s+", "", reason).strip()
    reason = _hide(reason[:1].lower() + reason[1:], url)
    if url.get_backend_name() == "sqlite":
        hint = "check the directory exists and syncd may write there"
    else:
        hint = "check the server is running and the URL (host, port, database, user, password)"
    return f"database.url: cannot connect to {shown} ({reason}): {hint}"


def _first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, whitespace collapsed."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return re.sub(r"\s+", " ", lines[0]) if lines else type(exc).__name__


def _hide(message: str, url: URL) -> str:
    """`message` with the URL's password (if any) replaced by `***`."""
    return message.replace(str(url.password), "***") if url.password else message


def _mask(url: str) -> str:
    """`url` with anything between `user:` and the last `@` replaced by `***`."""
    return re.sub(r"^([^:/]+://[^:/@]*):.*@", r"\1:***@", url)


def open_store(url: str) -> Engine:
    """The engine every syncd command starts with: connected, schema upgraded to the newest."""
    engine = make_engine(url)
    upgrade(engine)
    return engine


def upsert(session: Session, table: type[SQLModel], rows: list[dict[str, Any]]) -> None:
    """Insert `rows` into `table`, replacing rows with the same primary key: one statement,
    compiled once per table and column set, sent to the driver for all rows at once.

    A backfill stages hundreds of thousands of rows: SQLAlchemy's per-row parameter handling
    cost more than SQLite's insert, so only the columns whose type converts values (times)
    are converted here, and the rows go straight to the driver's `executemany`.
    """
    if not rows:
        return
    connection = session.connection()
    sql, names, convert = _upsert_statement(connection.dialect, table, tuple(rows[0]))
    if not set(names) <= rows[0].keys():  # a column left to its default: SQLAlchemy fills it
        connection.execute(_upsert_core(connection.dialect, table, tuple(rows[0])), rows)
        return
    params: list[Any]
    if connection.dialect.positional:
        params = [
            tuple(convert[n](row[n]) if n in convert else row[n] for n in names) for row in rows
        ]
    else:
        params = [{n: convert[n](v) if n in convert else v for n, v in row.items()} for row in rows]
    connection.exec_driver_sql(sql, params)


@functools.lru_cache(maxsize=64)
def _upsert_statement(
    dialect: Dialect, table: type[SQLModel], columns: tuple[str, ...]
) -> tuple[str, tuple[str, ...], dict[str, Callable[[Any], Any]]]:
    """(SQL, parameter names in order, converters by column) of `upsert` for these columns."""
    target = table.__table__  # type: ignore[attr-defined]
    compiled = _upsert_core(dialect, table, columns).compile(
        dialect=dialect, column_keys=list(columns)
    )
    converters = {
        name: processor
        for name in columns
        if (processor := target.c[name].type._cached_bind_processor(dialect)) is not None
    }
    return str(compiled), tuple(compiled.positiontup or compiled.params), converters


def _upsert_core(dialect: Dialect, table: type[SQLModel], columns: tuple[str, ...]) -> Any:
    """INSERT ... ON CONFLICT (primary key) DO UPDATE SET every other column of `columns`."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect_insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    target = table.__table__  # type: ignore[attr-defined]
    keys = [column.name for column in target.primary_key.columns]
    statement = dialect_insert(target)
    changing = {c: statement.excluded[c] for c in columns if c not in keys}
    return statement.on_conflict_do_update(index_elements=keys, set_=changing)
