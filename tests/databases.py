"""Throwaway databases for tests: a PostgreSQL schema of their own, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from syncd.store.db import make_engine


def postgres_schema(base: str) -> Iterator[str]:
    """A URL whose connections use a new schema (search_path), dropped afterwards."""
    schema = f"syncd_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


POSTGRES_ENV = "SYNCD_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def empty_database(backend: str, tmp_path: Path, what: str) -> Iterator[str]:
    """The URL of an empty database of its own: a SQLite file, or a fresh PostgreSQL schema
    (skipped, saying so, when no PostgreSQL server is named)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'syncd.db'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL {what} tests skipped")
    yield from postgres_schema(base)
