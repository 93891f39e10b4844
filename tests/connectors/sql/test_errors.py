"""Database failures become syncd's errors: what to do next, one line, the URL masked."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from connectors.sql.connector import SqlConnector
from connectors.sql.mapping import IntegrityRefused, Phase, map_error
from connectors.sql.settings import SqlSettings
from syncd.errors import (
    FatalError,
    OutcomeUnknownError,
    RetriableError,
    SkipError,
)
from syncd.retry import RetryPolicy
from tests.connectors.sql.conftest import POSTGRES_ONLY, TillMaker, connect_to, people

pytestmark = pytest.mark.anyio
LEDGER = {"mode": "ledger", "ledger_table": "points_ledger"}


@pytest.mark.parametrize("database_url", POSTGRES_ONLY, indirect=True)
async def test_wrong_credentials_are_fatal_with_the_url_masked(database_url: str) -> None:
    """A user the server refuses is FatalError at once, the password never shown. (The test
    server trusts every password, so the refused login is a user it does not know.)"""
    url = make_url(database_url).set(username="syncd_no_such_user", password="s3cr3t-pw")
    async with connect_to(url.render_as_string(hide_password=False), **LEDGER) as pos:
        with pytest.raises(FatalError) as refused:
            await pos.get_account("1")
    message = str(refused.value)
    assert "s3cr3t" not in message and "syncd_no_such_user:***@" in message
    assert 'role "syncd_no_such_user" does not exist' in message and "\n" not in message


async def test_a_refused_connection_is_fatal() -> None:
    """Nothing listening at the URL's port: FatalError naming the URL, password masked."""
    url = "postgresql://pos:s3cr3t-pw@127.0.0.1:1/pos"
    async with connect_to(url, **LEDGER) as pos:
        with pytest.raises(FatalError) as refused:
            await pos.prepare()
    message = str(refused.value)
    assert message.startswith("pos: cannot connect to postgresql+psycopg://pos:***@127.0.0.1:1/pos")
    assert "connection refused" in message and "s3cr3t" not in message


async def test_a_sqlite_file_that_cannot_be_opened_is_fatal(tmp_path: Path) -> None:
    """A database file in a folder that does not exist cannot be opened: FatalError."""
    async with connect_to(f"sqlite:///{tmp_path / 'missing' / 'pos.db'}", **LEDGER) as pos:
        with pytest.raises(FatalError, match="unable to open database file"):
            await pos.get_account("1")


async def test_a_locked_account_is_retriable_and_the_loop_runs_on(
    make_till: TillMaker, database_url: str
) -> None:
    """While another writer holds the lock, the write waits off the event loop, then gives
    up as RetriableError (bounded); once the lock is gone it lands."""
    till = make_till("column")
    (member,) = till.seed(people(1, start=3))
    values = till.connector_settings("pos", timeout_seconds=0.3)
    connector = SqlConnector(SqlSettings.model_validate(values), retry=RetryPolicy(attempts=2))
    async with connector as pos:
        await pos.prepare()
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        with till.engine.connect() as holder:
            if holder.dialect.name == "sqlite":
                holder.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                holder.execute(
                    text("SELECT id FROM members WHERE id = :id FOR UPDATE"), {"id": int(member)}
                )
            with pytest.raises(RetriableError) as busy:
                await pos.apply_delta(member, 5, key="op-busy", reason="syncd:op-busy")
            holder.rollback()
        ticker.cancel()
        assert ticks >= 20 and busy.value.account == member
        await pos.apply_delta(member, 5, key="op-busy", reason="syncd:op-busy")
    assert till.balance(member) == 35


def driver_error(orig: Exception, dbapi: type[Exception]) -> DBAPIError:
    """A driver's exception as SQLAlchemy raises it."""
    return DBAPIError.instance("UPDATE members ...", None, orig, dbapi)


PG = psycopg.errors


@pytest.mark.parametrize(
    ("orig", "phase", "becomes"),
    [
        (PG.SerializationFailure("could not serialize"), Phase.WORK, RetriableError),
        (PG.DeadlockDetected("deadlock detected"), Phase.WORK, RetriableError),
        (PG.LockNotAvailable("lock timeout"), Phase.WORK, RetriableError),
        (PG.AdminShutdown("terminating connection"), Phase.WORK, RetriableError),
        (PG.UndefinedColumn("column points does not exist"), Phase.WORK, FatalError),
        (PG.InsufficientPrivilege("permission denied"), Phase.WORK, FatalError),
        (PG.NumericValueOutOfRange("integer out of range"), Phase.WORK, SkipError),
        (PG.UniqueViolation("duplicate key"), Phase.WORK, IntegrityRefused),
        (PG.SerializationFailure("could not serialize"), Phase.COMMIT, RetriableError),
        (PG.OperationalError("server closed the connection"), Phase.COMMIT, OutcomeUnknownError),
        (PG.CannotConnectNow("the database system is starting up"), Phase.CONNECT, RetriableError),
        (PG.InvalidPassword("password authentication failed"), Phase.CONNECT, FatalError),
    ],
)
def test_postgresql_errors_say_what_to_do(
    orig: Exception, phase: Phase, becomes: type[Exception]
) -> None:
    """Rolled back for sure → retry; schema or grants → fatal; a lost COMMIT → read back."""
    mapped = map_error(
        driver_error(orig, psycopg.Error), phase, remote="pos", shown_url="postgresql://x"
    )
    assert type(mapped) is becomes


@pytest.mark.parametrize(
    ("message", "phase", "becomes"),
    [
        ("database is locked", Phase.WORK, RetriableError),
        ("database is locked", Phase.COMMIT, RetriableError),
        ("no such column: points", Phase.WORK, FatalError),
        ("attempt to write a readonly database", Phase.WORK, FatalError),
        ("disk I/O error", Phase.COMMIT, OutcomeUnknownError),
    ],
)
def test_sqlite_errors_say_what_to_do(message: str, phase: Phase, becomes: type[Exception]) -> None:
    """Busy → retry; a schema that no longer matches → fatal; an I/O error at COMMIT → unknown."""
    error = driver_error(sqlite3.OperationalError(message), sqlite3.Error)
    mapped = map_error(error, phase, remote="pos", shown_url="sqlite:///pos.db")
    assert type(mapped) is becomes


def test_the_password_is_cut_from_the_databases_words() -> None:
    """A driver message that repeats the password shows `***` instead."""
    error = driver_error(PG.InvalidPassword("bad password s3cr3t-pw for pos"), psycopg.Error)
    mapped = map_error(
        error,
        Phase.CONNECT,
        remote="pos",
        shown_url="postgresql://pos:***@db/pos",
        password="s3cr3t-pw",
    )
    assert "s3cr3t" not in str(mapped) and "***" in str(mapped)
