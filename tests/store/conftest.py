"""Store fixtures: one empty database per test, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from syncd.store.db import make_engine, upgrade
from tests.databases import postgres_schema

POSTGRES_ENV = "SYNCD_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of its own: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'syncd.db'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL store tests skipped")
    yield from postgres_schema(base)


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
