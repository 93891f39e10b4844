"""Rate limits are a budget: a client-side token bucket per remote API (DESIGN §4).

One bucket is shared by every caller of one remote, so the daemon as a whole stays under the
remote's limit instead of provoking 429s. The bucket spends slightly under the limit (`margin`)
and keeps its burst small enough that no sliding 60-second window ever holds more than the
limit, even with requests delayed on their way. A 429 that still arrives pauses every caller
until its Retry-After has passed.

Callers wait in priority order: syncs driven by webhooks go first, then polling, then
backfill. The priority is set for a whole task with `spending(Priority.POLL)` and read by every
request made under it, so no call site has to pass it along.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar

_EPSILON = 1e-9  # float slack, so that a refill of exactly one token is never short


class Priority(enum.IntEnum):
    """Who spends first when callers queue: lower values go first."""

    SYNC = 0  # a link some change made dirty (webhooks, mostly)
    POLL = 1  # the safety-net polls
    BACKFILL = 2  # reconcile and drift checks


_priority: ContextVar[Priority] = ContextVar("syncd_budget_priority", default=Priority.SYNC)


@contextlib.contextmanager
def spending(priority: Priority) -> Iterator[None]:
    """Make every request in this block (and the tasks it starts) wait at `priority`."""
    token = _priority.set(priority)
    try:
        yield
    finally:
        _priority.reset(token)


class TokenBucket:
    """At most `per_minute` acquisitions in any 60 seconds, shared by all callers."""

    def __init__(
        self,
        per_minute: float,
        *,
        margin: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.rate = per_minute * (1 - margin) / 60.0  # tokens per second
        # Half the margin as burst: any 60 s holds at most `per_minute * (1 - margin / 2)`
        # acquisitions, so the other half absorbs requests arriving later than they left
        # (a new connection, a busy loop) without a sliding window ever seeing a 429.
        self.capacity = max(1.0, float(int(per_minute * margin / 2)))
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()
        self._paused_until = 0.0
        self._queue: list[tuple[int, int]] = []
        self._order = itertools.count()
        self._turn = asyncio.Condition()
        self.acquired = 0

    async def acquire(self, priority: Priority | None = None) -> None:
        """Wait until a request may be sent (after every caller of a higher priority, and
        of the same priority that came earlier), then take one token."""
        entry = (int(_priority.get() if priority is None else priority), next(self._order))
        async with self._turn:
            heapq.heappush(self._queue, entry)
            try:
                while True:
                    if self._queue[0] != entry:
                        await self._turn.wait()
                        continue
                    wait = self._wait()
                    if wait <= 0:
                        heapq.heappop(self._queue)
                        self._tokens = max(0.0, self._tokens - 1)
                        self.acquired += 1
                        self._turn.notify_all()
                        return
                    self._turn.release()  # let others queue (perhaps ahead) while we wait
                    try:
                        await self._sleep(wait)
                    finally:
                        await self._turn.acquire()
            except BaseException:
                if entry in self._queue:
                    self._queue.remove(entry)
                    heapq.heapify(self._queue)
                self._turn.notify_all()
                raise

    def pause(self, seconds: float) -> None:
        """Stop every caller for `seconds` (the remote answered 429) and drain the burst."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self._tokens = 0.0

    def _wait(self) -> float:
        """Seconds until the head of the queue may take a token (0: now)."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if now < self._paused_until:
            return self._paused_until - now
        if self._tokens >= 1 - _EPSILON:
            return 0.0
        return (1 - self._tokens) / self.rate
