"""Store fixtures: one empty database per test, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from syncd.store.db import make_engine, upgrade
from tests.databases import BACKENDS, empty_database

POSTGRES_ENV = "SYNCD_TEST_POSTGRES_URL"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of its own: a SQLite file, or a fresh PostgreSQL schema."""
    yield from empty_database(request.param, tmp_path, "store")


@pytest.fixture
def empty_engine(database_url: str) -> Iterator[Engine]:
    """An engine on the empty database, disposed after the test."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def store(empty_engine: Engine) -> Engine:
    """An engine on a database upgraded to the newest schema."""
    upgrade(empty_engine)
    return empty_engine
