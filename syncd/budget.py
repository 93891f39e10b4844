"""Rate limits are a budget: a client-side token bucket per remote API (DESIGN §4).

One bucket is shared by every caller of one remote, so the daemon as a whole stays under the
remote's limit instead of provoking 429s. The bucket spends slightly under the limit (`margin`)
and keeps its burst small enough that no sliding 60-second window ever holds more than the
limit. A 429 that still arrives pauses every caller until its Retry-After has passed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

_EPSILON = 1e-9  # float slack, so that a refill of exactly one token is never short


class TokenBucket:
    """At most `per_minute` acquisitions in any 60 seconds, shared by all callers (FIFO)."""

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
        self.capacity = max(1.0, float(int(per_minute * margin)))
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self.acquired = 0

    async def acquire(self) -> None:
        """Wait until a request may be sent, then take one token."""
        async with self._lock:
            while True:
                now = self._clock()
                self._refill(now)
                if now < self._paused_until:
                    await self._sleep(self._paused_until - now)
                elif self._tokens >= 1 - _EPSILON:
                    self._tokens = max(0.0, self._tokens - 1)
                    self.acquired += 1
                    return
                else:
                    await self._sleep((1 - self._tokens) / self.rate)

    def pause(self, seconds: float) -> None:
        """Stop every caller for `seconds` (the remote answered 429) and drain the burst."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self._tokens = 0.0

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
