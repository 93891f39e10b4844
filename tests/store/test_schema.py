"""The migrations build exactly the schema the models describe, on every backend."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from syncd.store.db import alembic_config, make_engine, session_scope, upgrade
from syncd.store.models import Link, metadata

STORE_TABLES = {
    "links",
    "operations",
    "cursors",
    "inbox_events",
    "conflicts",
    "job_turns",
    "reconcile_accounts",
    "reconcile_contacts",
    "reconcile_pairs",
}


def _revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_upgrade_creates_every_table(empty_engine: Engine) -> None:
    """Upgrading an empty database creates every store table and records the head."""
    upgrade(empty_engine)

    tables = set(inspect(empty_engine).get_table_names())
    assert tables == STORE_TABLES | {"alembic_version"}
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert _revision(empty_engine) == head


def test_upgrade_twice_is_a_no_op(store: Engine) -> None:
    """A second upgrade (every restart does one) changes nothing and keeps the rows."""
    with session_scope(store) as session:
        session.add(Link(connector="shop", wix_account_id="w1", external_id="e1"))

    upgrade(store)

    assert set(inspect(store).get_table_names()) == STORE_TABLES | {"alembic_version"}
    with session_scope(store) as session:
        assert session.get(Link, 1) is not None


def test_models_and_migrations_agree(store: Engine) -> None:
    """Autogenerate finds no difference between the models and the migrated schema."""
    with store.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_sqlite_runs_in_wal_mode_with_busy_timeout(tmp_path: Path) -> None:
    """Every SQLite connection is WAL, waits 5 s on locks, enforces foreign keys, NORMAL sync."""
    engine = make_engine(f"sqlite:///{tmp_path / 'syncd.db'}")
    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA busy_timeout").scalar() == 5000
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        engine.dispose()


def test_in_memory_sqlite_works() -> None:
    """`sqlite://` (in memory) upgrades and keeps rows across sessions of one engine."""
    engine = make_engine("sqlite://")
    try:
        upgrade(engine)
        with session_scope(engine) as session:
            session.add(Link(connector="shop", wix_account_id="w1", external_id="e1"))
        with session_scope(engine) as session:
            link = session.get(Link, 1)
            assert link is not None
            assert link.external_id == "e1"
    finally:
        engine.dispose()
