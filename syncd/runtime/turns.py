"""Turns of scheduled jobs across replicas: each turn of a job runs in one process only.

Every replica schedules the same jobs (polls, the drift check). Before a run, a replica takes
the job's turn in one conditional UPDATE: the row's `until` must have passed, and it is moved
to `now + hold`. Whoever's UPDATE matched runs the job; the others skip that tick. Holding the
turn for about one period means a job runs once per period across all replicas, not once per
replica; a replica that dies mid-run simply lets the turn expire. On PostgreSQL the row lock
makes racing replicas wait and re-check `until`; SQLite serialises the writers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import col

from syncd.store.db import session_scope
from syncd.store.models import JobTurn

_NEVER = datetime(2000, 1, 1, tzinfo=UTC)


def take_turn(engine: Engine, job: str, owner: str, *, now: datetime, hold: timedelta) -> bool:
    """True when this process runs `job` now (and nobody else will before `now + hold`)."""
    with session_scope(engine) as session:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(
            insert(JobTurn.__table__)  # type: ignore[attr-defined]
            .values(name=job, owner=None, until=_NEVER)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        taken = session.execute(
            update(JobTurn)
            .where(col(JobTurn.name) == job, col(JobTurn.until) <= now)
            .values(owner=owner, until=now + hold)
        )
        return bool(taken.rowcount)  # type: ignore[attr-defined]
