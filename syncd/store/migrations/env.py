"""Alembic environment: migrates the connection `syncd.store.db.upgrade` hands over.

Without one (e.g. `alembic_config(url=...)` for autogenerate) it opens its own engine; with
`--sql` (offline) it prints the DDL.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlmodel.sql.sqltypes import AutoString

from syncd.store.db import make_engine
from syncd.store.models import metadata
from syncd.store.types import StrEnumType, UTCDateTime


def render_item(kind: str, obj: Any, autogen: AutogenContext) -> str | Literal[False]:
    """Write our column types as the plain `sa.*` types they store, so revisions stay frozen."""
    if kind != "type":
        return False
    if isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if isinstance(obj, StrEnumType):
        return f"sa.String(length={obj.length})"
    if isinstance(obj, AutoString):
        return "sa.String()" if obj.length is None else f"sa.String(length={obj.length})"
    return False


def run_online(connection: Connection) -> None:
    """Run the migrations on `connection` (batch mode on SQLite, which cannot ALTER much)."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline(url: str) -> None:
    """Emit the migrations as SQL text for `url`'s dialect."""
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    """Pick the mode Alembic was asked for."""
    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        run_offline(url or "sqlite://")
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        run_online(connection)
        return
    engine = make_engine(url or "sqlite://")
    try:
        with engine.begin() as own_connection:
            run_online(own_connection)
    finally:
        engine.dispose()


main()
