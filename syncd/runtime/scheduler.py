"""Every scheduled job of the daemon, in one place (APScheduler 3, on the daemon's event loop).

Requests are spent in priority order (`syncd.budget`): link syncs, then polls, then the drift
check.

    poll Wix's ledger                   every sync.poll_interval_seconds
    poll each connector's change feed   every sync.poll_interval_seconds
    check the loyalty program's status  every minute (and when Wix says it changed)
    drift check                         sync.drift_check_cron (every link re-read and re-synced)

Jobs never overlap themselves and a late run is coalesced into one. With several replicas,
polls and the drift check run in one replica per turn (`syncd.runtime.turns`); each replica
checks the program itself (its own writes wait on it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from syncd.budget import Priority, spending
from syncd.errors import SyncdError
from syncd.logs import event, get_logger

log = get_logger(__name__)
Job = Callable[[], Awaitable[object]]
Turns = Callable[[str, timedelta], bool]
"""Takes a job's turn for a while: True when this replica runs it now (see `turns`)."""
PROGRAM_CHECK_SECONDS = 60
DRIFT_TURN = timedelta(hours=1)  # a drift check runs once an hour at most, across replicas


class Running:
    """The job runs in progress, so that stopping can wait for them instead of cutting them."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[object]] = set()

    async def finish(self, timeout: float) -> None:
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)


def build_scheduler(
    *,
    running: Running,
    poll_seconds: int,
    pollers: dict[str, Job],
    check_program: Job,
    drift_check: Job,
    drift_cron: str,
    turns: Turns | None = None,
) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
    )
    poll_turn = timedelta(seconds=poll_seconds * 0.8)  # under one period: ticks drift apart
    for name, poll in pollers.items():
        scheduler.add_job(
            _guarded(
                f"poll.{name}",
                _once(poll, f"poll.{name}", turns, poll_turn),
                running,
                Priority.POLL,
            ),
            "interval",
            seconds=poll_seconds,
            id=f"poll.{name}",
        )
    scheduler.add_job(
        _guarded("program", check_program, running),
        "interval",
        seconds=PROGRAM_CHECK_SECONDS,
        id="program",
    )
    if drift_cron:
        scheduler.add_job(
            _guarded(
                "drift", _once(drift_check, "drift", turns, DRIFT_TURN), running, Priority.BACKFILL
            ),
            CronTrigger.from_crontab(drift_cron),
            id="drift",
        )
    return scheduler


def _once(job: Job, name: str, turns: Turns | None, hold: timedelta) -> Job:
    """`job`, skipped on ticks when another replica has its turn."""
    if turns is None:
        return job

    async def run() -> object:
        if not turns(name, hold):
            return None
        return await job()

    return run


def _guarded(
    name: str, job: Job, running: Running, priority: Priority = Priority.SYNC
) -> Callable[[], Awaitable[None]]:
    """A job that spends the API budget at `priority`, is known to `running` while it runs,
    and logs its failure as an event instead of a traceback and lives on."""

    async def run() -> None:
        task = asyncio.current_task()
        if task is not None:
            running.tasks.add(task)
        try:
            with spending(priority):
                await job()
        except SyncdError as error:
            event(log, "job.failed", level=logging.WARNING, job=name, error=str(error))
        finally:
            if task is not None:
                running.tasks.discard(task)

    run.__name__ = run.__qualname__ = name
    return run
