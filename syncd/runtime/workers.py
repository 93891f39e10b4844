"""Workers: lease dirty links and sync each with its connector's applier.

One link is synced by one worker at a time (its lease), however many workers and replicas run.
Many events for one link coalesce: the link is dirty once, synced once. Woken by a mark, the
loop waits `COALESCE_SECONDS` before it claims, so the webhooks of one change (each sends
two) are synced once. A sync that fails leaves the link dirty, to be retried after its lease
has expired. While every slot is busy, marks do not wake the loop: only a sync ending does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import timedelta

from sqlalchemy.engine import Engine

from syncd.clock import utcnow
from syncd.engine.applier import Applier
from syncd.errors import SyncdError
from syncd.logs import event, get_logger
from syncd.runtime.dirty import claim_links, release, renew
from syncd.runtime.metrics import Metrics

log = get_logger(__name__)
LEASE = timedelta(seconds=15)
RENEW_EVERY = LEASE / 3
RETRY_AFTER_FAILURE = timedelta(seconds=5)
IDLE_SECONDS = 0.5
COALESCE_SECONDS = 0.003


class Workers:
    def __init__(
        self,
        engine: Engine,
        appliers: Mapping[str, Applier],
        metrics: Metrics,
        *,
        owner: str,
        wake: asyncio.Event,
        may_write: Callable[[], bool],
        concurrency: int = 4,
    ) -> None:
        self.engine = engine
        self.appliers = appliers
        self.metrics = metrics
        self.owner = owner
        self.wake = wake
        self.may_write = may_write
        self.concurrency = concurrency
        self.in_flight: set[asyncio.Task[None]] = set()
        self.syncing: set[int] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and sync until `stop` is set; then let the syncs in flight finish."""
        renewing = asyncio.create_task(self._renew(stop))
        try:
            await self._loop(stop)
        finally:
            renewing.cancel()

    async def _renew(self, stop: asyncio.Event) -> None:
        while not stop.is_set() or self.in_flight:
            await asyncio.sleep(RENEW_EVERY.total_seconds())
            renew(self.engine, self.owner, list(self.syncing), now=utcnow(), lease=LEASE)

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            free = self.concurrency - len(self.in_flight)
            if free > 0 and self.may_write():
                self.wake.clear()  # a link marked from here on sets it again
                claimed = claim_links(
                    self.engine, self.owner, now=utcnow(), limit=free, lease=LEASE
                )
                for link_id, connector in claimed:
                    task = asyncio.create_task(self._sync(link_id, connector))
                    self.in_flight.add(task)
                    task.add_done_callback(self.in_flight.discard)
                if len(claimed) == free:
                    continue  # every slot taken: wait for a sync to end (below, next turn)
            # All slots busy: only a sync ending (or stop) frees one; a mark meanwhile leaves
            # `wake` set for then. Otherwise also wait for a mark (or the idle timeout).
            syncs = set(self.in_flight)
            waiters = [asyncio.create_task(stop.wait())]
            if free > 0:
                waiters.append(asyncio.create_task(self.wake.wait()))
            done, _ = await asyncio.wait(
                [*waiters, *syncs], timeout=IDLE_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in waiters:
                waiter.cancel()
            if free > 0 and self.wake.is_set() and not done & syncs:
                # Woken by a mark: the other webhooks of that change (each change sends two,
                # and our write's echo two more) land within a few ms; claim once for all.
                await asyncio.sleep(COALESCE_SECONDS)
        if self.in_flight:
            await asyncio.wait(list(self.in_flight))

    async def _sync(self, link_id: int, connector: str) -> None:
        claimed_at = utcnow()
        synced = False
        self.syncing.add(link_id)
        try:
            applier = self.appliers.get(connector)
            if applier is None:
                event(
                    log,
                    "sync.skipped",
                    level=logging.WARNING,
                    link=link_id,
                    reason=f"connector {connector!r} is not configured",
                )
                return
            result = await applier.sync(link_id)
            synced = not result.errors
            self.metrics.inc(
                "syncd_syncs_total", connector=connector, result="ok" if synced else "error"
            )
            if result.wix_writes:
                self.metrics.inc(
                    "syncd_writes_total", result.wix_writes, connector=connector, side="wix"
                )
            if result.ext_writes:
                self.metrics.inc(
                    "syncd_writes_total", result.ext_writes, connector=connector, side="external"
                )
            for error in result.errors:
                event(log, "sync.error", level=logging.WARNING, link=link_id, error=error)
        except SyncdError as error:
            self.metrics.inc("syncd_syncs_total", connector=connector, result="error")
            event(log, "sync.failed", level=logging.WARNING, link=link_id, error=str(error))
        finally:
            self.syncing.discard(link_id)
            release(
                self.engine,
                link_id,
                self.owner,
                claimed_at=claimed_at,
                synced=synced,
                retry_at=utcnow() + RETRY_AFTER_FAILURE,
            )
