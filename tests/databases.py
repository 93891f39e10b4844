"""Throwaway databases for tests: a PostgreSQL schema of their own, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

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
