"""`syncd run`: the long-running daemon, put together.

Start: open the store (upgrading its schema), settle every write left unresolved by a previous
process (recovery before work), check the loyalty program, then serve webhooks and operations
endpoints, run the workers and the scheduled jobs. SIGTERM or SIGINT: stop taking webhooks and
jobs, let the syncs in flight finish (each commits what it applied), exit within ~10 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import uvicorn
from sqlalchemy import text
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import connectors
from connectors.base import Connector
from syncd import __version__
from syncd.clock import utcnow
from syncd.engine.applier import Applier
from syncd.engine.outbox import Outbox
from syncd.errors import SyncdError
from syncd.logs import event, get_logger
from syncd.reconcile.run import find_drift, policy_for
from syncd.runtime.dirty import backlog, mark_link_dirty, release_dead
from syncd.runtime.intake import Intake
from syncd.runtime.matcher import Matcher
from syncd.runtime.metrics import Metrics
from syncd.runtime.overview import overview
from syncd.runtime.pollers import poll_connector, poll_wix
from syncd.runtime.scheduler import Job, Running, build_scheduler
from syncd.runtime.turns import take_turn
from syncd.runtime.workers import Workers
from syncd.settings import Settings
from syncd.store.db import open_store
from syncd.wix.client import WixClient

log = get_logger(__name__)
STOP_GRACE_SECONDS = 8.0


@dataclass
class DaemonState:
    """What /readyz and /status report."""

    started_at: datetime = field(default_factory=utcnow)
    recovered: bool = False
    program_status: str | None = None
    wix_error: str | None = None
    stopping: bool = False

    @property
    def program_active(self) -> bool:
        return self.program_status == "ACTIVE"


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon decides how to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Daemon:
    def __init__(
        self, settings: Settings, engine: Engine, wix: WixClient, links: dict[str, Connector]
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.wix = wix
        self.connectors = links
        self.state = DaemonState()
        self.metrics = Metrics()
        self.wake = asyncio.Event()
        self.appliers = {
            name: Applier(Outbox(engine), wix, connector, policy_for(settings, connector.settings))
            for name, connector in links.items()
        }
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.workers = Workers(
            engine,
            self.appliers,
            self.metrics,
            owner=self.owner,
            wake=self.wake,
            may_write=lambda: self.state.program_active and self.state.recovered,
            concurrency=settings.sync.workers,
        )
        self.intake = Intake(
            engine,
            links,
            self.metrics,
            self.wake,
            settings.wix.webhook_public_key,
            on_program_event=self._program_changed,
        )
        self.matcher = Matcher(engine, wix, links)
        self.metrics.gauge(self._gauges)
        self._background: set[asyncio.Future[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        freed = release_dead(self.engine, socket.gethostname(), _pid_alive)
        if freed:
            event(log, "leases.freed", links=freed, reason="their process no longer runs")
        await self._check_program_quietly()
        for name, connector in self.connectors.items():
            for created in await connector.prepare():
                event(log, "connector.prepared", connector=name, created=created)
        for applier in self.appliers.values():
            await applier.recover()
        self.state.recovered = True
        event(
            log,
            "daemon.started",
            owner=self.owner,
            connectors=",".join(self.connectors),
            port=self.settings.server.port,
        )
        server = _Server(
            uvicorn.Config(
                self.app(),
                host=self.settings.server.host,
                port=self.settings.server.port,
                log_config=None,
                access_log=False,
                lifespan="off",
            )
        )
        running = Running()
        scheduler = build_scheduler(
            running=running,
            poll_seconds=self.settings.sync.poll_interval_seconds,
            pollers=self._pollers(),
            check_program=self.check_program,
            drift_check=self.drift_check,
            drift_cron=self.settings.sync.drift_check_cron,
            turns=lambda job, hold: take_turn(
                self.engine, job, self.owner, now=utcnow(), hold=hold
            ),
        )
        serving = asyncio.create_task(server.serve())
        working = asyncio.create_task(self.workers.run(stop))
        scheduler.start()
        self.wake.set()  # links left dirty by a previous process
        await stop.wait()
        self.state.stopping = True
        event(log, "daemon.stopping", in_flight=len(self.workers.in_flight))
        scheduler.pause()  # no new runs; the ones running finish before the scheduler stops
        server.should_exit = True
        await running.finish(timeout=STOP_GRACE_SECONDS / 2)
        scheduler.shutdown(wait=False)
        try:
            await asyncio.wait_for(asyncio.gather(serving, working), STOP_GRACE_SECONDS)
        except TimeoutError:
            event(log, "daemon.stop_timeout", level=logging.WARNING)
        event(log, "daemon.stopped")

    async def check_program(self) -> None:
        try:
            program = await self.wix.get_program()
        except SyncdError as error:
            self.state.wix_error = str(error)
            raise
        self.state.wix_error = None
        if program.status != self.state.program_status:
            event(
                log,
                "program.status",
                status=program.status,
                writes="flowing" if program.active else "held until ACTIVE",
            )
        self.state.program_status = program.status
        if program.active:
            self.wake.set()

    def _pollers(self) -> dict[str, Job]:
        pollers: dict[str, Job] = {
            "wix": partial(poll_wix, self.engine, self.wix, self.metrics),
            "new-accounts": self.matcher.run,
        }
        for name, connector in self.connectors.items():
            pollers[name] = partial(poll_connector, self.engine, connector, self.metrics)
        return pollers

    def _program_changed(self) -> None:
        """Wix says the program changed: look at it soon, off the webhook's path."""
        task = asyncio.ensure_future(self._check_program_quietly())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _check_program_quietly(self) -> None:
        try:
            await self.check_program()
        except SyncdError as error:
            event(log, "program.unreachable", level=logging.WARNING, error=str(error))

    async def drift_check(self) -> None:
        """Read both sides in full; links whose balances drifted apart get re-synced."""
        for name, connector in self.connectors.items():
            drifted = await find_drift(self.engine, self.settings, self.wix, connector)
            for link_id in drifted:
                mark_link_dirty(self.engine, link_id, now=utcnow())
            self.metrics.inc("syncd_drift_repairs_total", len(drifted), connector=name)
            event(log, "drift.check", connector=name, drifted=len(drifted))
        self.wake.set()

    # -- HTTP --------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                *self.intake.routes(),
                Route("/healthz", self.healthz),
                Route("/readyz", self.readyz),
                Route("/metrics", self.metrics_page),
                Route("/status", self.status),
            ]
        )

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        reasons = []
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as error:
            reasons.append(f"database unreachable: {type(error).__name__}")
        if not self.state.recovered:
            reasons.append("recovering writes left by the last run")
        if self.state.wix_error:
            reasons.append(f"wix unreachable: {self.state.wix_error}")
        elif not self.state.program_active:
            reasons.append(f"loyalty program is {self.state.program_status}: writes held")
        if self.state.stopping:
            reasons.append("stopping")
        body = {"ready": not reasons, "reasons": reasons}
        return JSONResponse(body, status_code=200 if not reasons else 503)

    async def metrics_page(self, request: Request) -> Response:
        return PlainTextResponse(self.metrics.render(), media_type="text/plain; version=0.0.4")

    async def status(self, request: Request) -> Response:
        return JSONResponse(status(self.engine, self.state, self.wix, self.connectors))

    def _gauges(self) -> list[tuple[str, dict[str, str], float]]:
        dirty, oldest = backlog(self.engine)
        age = (utcnow() - oldest).total_seconds() if oldest else 0.0
        samples: list[tuple[str, dict[str, str], float]] = [
            ("syncd_dirty_links", {}, float(dirty)),
            ("syncd_oldest_unsynced_seconds", {}, max(age, 0.0)),
            ("syncd_api_calls_total", {"remote": "wix"}, float(self.wix.calls)),
            ("syncd_api_rate_limited_total", {"remote": "wix"}, float(self.wix.rate_limited)),
        ]
        for name, connector in self.connectors.items():
            samples.append(("syncd_api_calls_total", {"remote": name}, float(connector.calls)))
        for name, count in overview(self.engine)["conflicts_open"].items():
            samples.append(("syncd_conflicts_open", {"connector": name}, float(count)))
        return samples


def _pid_alive(pid: int) -> bool:
    """Whether a process of this host runs; our own pid counts as dead, because this is asked
    before we take any lease: such a lease is a previous incarnation's (a container restart)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def status(
    engine: Engine, state: DaemonState, wix: WixClient, links: dict[str, Connector]
) -> dict[str, Any]:
    """The /status document: the store's overview plus this process's state (no personal
    data, no secrets)."""
    store = overview(engine)
    return {
        "version": __version__,
        "started_at": state.started_at.isoformat(),
        "ready": state.recovered and state.program_active and not state.stopping,
        "program": state.program_status,
        "recovered": state.recovered,
        "dirty_links": store["dirty_links"],
        "oldest_unsynced": store["oldest_unsynced"],
        "unresolved_operations": store["unresolved_operations"],
        "wix": {"api_calls": wix.calls, "rate_limited": wix.rate_limited, "error": state.wix_error},
        "connectors": {
            name: {
                "type": connector.settings.type,
                "links": store["links"].get(name, 0),
                "conflicts_open": store["conflicts_open"].get(name, 0),
                "api_calls": connector.calls,
            }
            for name, connector in links.items()
        },
    }


async def run_daemon(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; the exit code."""
    typed = connectors.typed_settings(settings)
    engine = open_store(settings.database.url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with AsyncExitStack() as stack:
            wix = await stack.enter_async_context(WixClient(settings.wix))
            links = {t.name: await stack.enter_async_context(connectors.create(t)) for t in typed}
            await Daemon(settings, engine, wix, links).run(stop)
    finally:
        engine.dispose()
    return 0
