"""The database client: one SQLAlchemy engine, and units of work run off the event loop.

SQLAlchemy is synchronous and the connector port is async, so every unit of work runs in a
worker thread (`asyncio.to_thread`): the event loop never waits on the database. A unit of
work is a function `(connection, schema) -> value` run inside one transaction:

- it is retried under the one bounded policy (`syncd.retry`) when it fails before the commit
  (nothing was written, so repeating it is safe);
- read-only units are rolled back, never committed;
- a failure of the COMMIT itself is an `OutcomeUnknownError` unless the database said it
  rolled back (see `mapping.map_error`): the caller reads back, never resends blind.

The schema (tables and columns named in the config) is reflected on first use and checked
(`schema.load_schema`); `prepare()` reflects it again and creates syncd's own tables.
SQL statements are built with SQLAlchemy Core from the reflected tables, so configured names
are quoted identifiers and values are always bound parameters.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, RootTransaction
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from connectors.sql.mapping import Phase, map_error, reason
from connectors.sql.schema import Schema, load_schema
from connectors.sql.settings import URL_EXAMPLES, SqlSettings
from syncd.errors import ConfigError, RemoteError
from syncd.retry import RetryPolicy

T = TypeVar("T")
Work = Callable[[Connection, Schema], T]


def make_engine(settings: SqlSettings) -> Engine:
    """An engine for the connector's URL; ConfigError (one line, URL masked) if it is unusable.

    SQLite waits `timeout_seconds` for a lock; PostgreSQL gives up connecting after
    `timeout_seconds` and waits at most that long for a row lock (`lock_timeout`). Nothing
    else about the POS database's sessions is changed (no journal mode, no isolation level).
    """
    try:
        url = settings.sqlalchemy_url()
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"connectors.{settings.name}.url: {settings.masked_url!r} is not a SQLAlchemy "
            f"database URL: {URL_EXAMPLES}"
        ) from None
    shown = url.render_as_string(hide_password=True)
    try:
        backend = url.get_backend_name()
        if backend == "sqlite":
            args = {"timeout": settings.timeout_seconds, "check_same_thread": False}
            return create_engine(url, connect_args=args, pool_pre_ping=True)
        if backend == "postgresql":
            pg_args = {}
            if "connect_timeout" not in url.query:
                pg_args["connect_timeout"] = max(1, math.ceil(settings.timeout_seconds))
            engine = create_engine(url, connect_args=pg_args, pool_pre_ping=True)
            lock_timeout = f"{math.ceil(settings.timeout_seconds * 1000)}ms"
            event.listen(engine, "connect", _pg_lock_timeout(lock_timeout))
            return engine
        return create_engine(url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError, TypeError, ValueError) as exc:
        why = reason(exc, password=url.password if isinstance(url.password, str) else None)
        raise ConfigError(
            f"connectors.{settings.name}.url: cannot use {shown} ({why}): {URL_EXAMPLES}"
        ) from None


def _pg_lock_timeout(value: str) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, false)", (value,))
        dbapi_connection.commit()

    return on_connect


class SqlClient:
    """One database: its engine, its reflected schema, and `run` for units of work."""

    def __init__(self, settings: SqlSettings, *, retry: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.remote = settings.name
        self.engine = make_engine(settings)
        url = self.engine.url
        self.shown_url = url.render_as_string(hide_password=True)
        self._password = url.password if isinstance(url.password, str) else None
        self._retry = retry or RetryPolicy()
        self._schema: Schema | None = None
        self._created: list[str] = []
        self._schema_lock = threading.Lock()
        self.statements = 0
        event.listen(self.engine, "before_cursor_execute", self._count)

    def _count(self, *args: object) -> None:
        self.statements += 1

    async def aclose(self) -> None:
        await asyncio.to_thread(self.engine.dispose)

    async def run(self, work: Work[T], *, write: bool = False, account: str | None = None) -> T:
        """`work` in one transaction in a worker thread, committed when `write`, retried while
        it fails before the commit; errors are syncd's (see `mapping.map_error`)."""
        async for attempt in self._retry.retrying():
            with attempt:
                return await asyncio.to_thread(self._unit, work, write, account, False)
        raise AssertionError("the retry policy re-raises its last error")  # pragma: no cover

    async def prepare(self) -> list[str]:
        """Reflect and check the schema again, creating syncd's own tables when allowed;
        one line per table created."""
        async for attempt in self._retry.retrying():
            with attempt:
                await asyncio.to_thread(self._unit, _nothing, False, None, True)
                return list(self._created)
        raise AssertionError("the retry policy re-raises its last error")  # pragma: no cover

    # -- one unit of work, in a worker thread -----------------------------------------------------

    def _unit(self, work: Work[T], write: bool, account: str | None, refresh: bool) -> T:
        try:
            connection = self.engine.connect()
        except DBAPIError as error:
            raise self._mapped(error, Phase.CONNECT, account) from None
        with connection:
            schema = self._schema_on(connection, account, refresh=refresh)
            transaction = connection.begin()
            try:
                result = work(connection, schema)
            except DBAPIError as error:
                _abandon(transaction)
                raise self._mapped(error, Phase.WORK, account) from None
            except RemoteError as error:
                _abandon(transaction)
                error.remote = error.remote or self.remote  # units of work leave it blank
                raise
            except BaseException:
                _abandon(transaction)
                raise
            if not write:
                _abandon(transaction)
                return result
            try:
                transaction.commit()
            except DBAPIError as error:
                raise self._mapped(error, Phase.COMMIT, account) from None
            return result

    def _schema_on(self, connection: Connection, account: str | None, *, refresh: bool) -> Schema:
        with self._schema_lock:
            if self._schema is None or refresh:
                try:
                    with connection.begin():
                        self._schema, self._created = load_schema(
                            connection, self.settings, remote=self.remote
                        )
                except DBAPIError as error:
                    raise self._mapped(error, Phase.WORK, account) from None
            return self._schema

    def _mapped(self, error: DBAPIError, phase: Phase, account: str | None) -> Exception:
        mapped: RemoteError | Exception = map_error(
            error,
            phase,
            remote=self.remote,
            shown_url=self.shown_url,
            password=self._password,
            account=account,
        )
        return mapped


def _nothing(connection: Connection, schema: Schema) -> None:
    return None


def _abandon(transaction: RootTransaction) -> None:
    """Roll back, if the connection still can (after a lost connection there is nothing to)."""
    with contextlib.suppress(DBAPIError):
        transaction.rollback()
