"""Fixtures for the sql connector: a demo POS database per test (a SQLite file, or a fresh
PostgreSQL schema when SYNCD_TEST_POSTGRES_URL names a server), its till, and the connector.

`pos` is parametrized over both backends and both modes; tests that need one mode or one
backend build what they need with `make_till` / `connect`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from connectors.sql.connector import SqlConnector
from connectors.sql.emulator import SqlTill
from connectors.sql.settings import Mode, SqlSettings
from tests.databases import BACKENDS, empty_database

MODES = ["ledger", "column"]
POSTGRES_ONLY = [pytest.param("postgres", marks=pytest.mark.postgres)]
"""`parametrize("database_url", POSTGRES_ONLY, indirect=True)`: a PostgreSQL-only test."""
SQLITE_ONLY = ["sqlite"]
"""For behaviour the backend does not change (the till itself, checks made before any SQL):
SQLite only, keeping the suite fast."""
TillMaker = Callable[..., SqlTill]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of this test's own, on each backend."""
    yield from empty_database(request.param, tmp_path, "sql connector")


@pytest.fixture
def make_till(database_url: str) -> Iterator[TillMaker]:
    """Makes the demo POS schema on the test's database and returns its till."""
    made: list[SqlTill] = []

    def make(mode: Mode, **options: Any) -> SqlTill:
        till = SqlTill(database_url, mode, **options)
        made.append(till)
        return till

    yield make
    for till in made:
        till.close()


@pytest.fixture(params=MODES)
def till(request: pytest.FixtureRequest, make_till: TillMaker) -> SqlTill:
    """The demo POS in each mode."""
    return make_till(request.param)


@contextlib.asynccontextmanager
async def connect(till: SqlTill, **extra: Any) -> AsyncIterator[SqlConnector]:
    """The connector on the till's database (settings overridden by `extra`)."""
    settings = SqlSettings.model_validate(till.connector_settings("pos", **extra))
    async with SqlConnector(settings) as connector:
        yield connector


@contextlib.asynccontextmanager
async def connect_to(url: str, **values: Any) -> AsyncIterator[SqlConnector]:
    """The connector on any database, configured by `values`."""
    settings = SqlSettings.model_validate({"name": "pos", "type": "sql", "url": url} | values)
    async with SqlConnector(settings) as connector:
        yield connector


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A plain engine on the test's database, for schemas other than the demo POS's."""
    made = create_engine(database_url)
    yield made
    made.dispose()


@pytest.fixture
async def pos(till: SqlTill) -> AsyncIterator[SqlConnector]:
    """The connector on `till`, its tables checked and syncd's own created."""
    async with connect(till) as connector:
        await connector.prepare()
        yield connector


def people(count: int, start: int = 0) -> list[dict[str, Any]]:
    """`count` members with emails, phones written as a till would, and balances."""
    return [
        {
            "email": f"Member{i}@Example.com",
            "phone": f"(415) 555-{i:04d}",
            "name": f"Member {i}",
            "balance": 10 * i,
        }
        for i in range(start, start + count)
    ]
