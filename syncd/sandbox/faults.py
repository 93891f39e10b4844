"""Fault injection shared by every emulator: request faults, a rate limiter, webhook faults.

Nothing here knows about a vendor. An emulator holds one `RequestFaults`, one
`SlidingWindowLimiter` per API (keyed by site, location or portal) and one `DeliveryFaults`
for its webhooks, and asks them what to do:

    RequestFaults.roll_before()       -> BeforeFault  (sleep, then maybe answer 5xx unapplied)
    RequestFaults.roll_after_commit() -> AfterCommit  (answer, answer 500, or hang, once applied)
    SlidingWindowLimiter.acquire(key) -> None, or the Retry-After seconds when over the limit
    DeliveryFaults.shape(events)      -> the events to send: some dropped, some twice, shuffled

Every roll uses the `random.Random` the dataclass holds, so a seeded emulator injects the
same faults in the same order on every run.
"""

from __future__ import annotations

import enum
import math
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


class AfterCommit(enum.Enum):
    """What happens to a request once its change has been applied."""

    ANSWER = "answer"
    FAIL = "fail"  # answer 500: the change stays applied
    HANG = "hang"  # wait `hang_seconds`, then answer: the client has usually given up


@dataclass(frozen=True)
class BeforeFault:
    """What happens to a request before it is applied."""

    delay_seconds: float
    fail: bool  # answer a 5xx and apply nothing


@dataclass
class RequestFaults:
    """Request faults, all off by default; rates are probabilities in 0..1."""

    latency_ms: int = 0
    error_rate: float = 0.0
    error_status: int = 503
    fail_after_commit_rate: float = 0.0
    timeout_after_commit_rate: float = 0.0
    hang_seconds: float = 30.0
    rng: random.Random = field(default_factory=lambda: random.Random(0), repr=False)

    def roll_before(self) -> BeforeFault:
        """Decide the latency and whether this request fails before being applied."""
        fail = self.error_rate > 0 and self.rng.random() < self.error_rate
        return BeforeFault(delay_seconds=max(self.latency_ms, 0) / 1000, fail=fail)

    def roll_after_commit(self) -> AfterCommit:
        """Decide how a request that has been applied is answered."""
        if self.fail_after_commit_rate > 0 and self.rng.random() < self.fail_after_commit_rate:
            return AfterCommit.FAIL
        if (
            self.timeout_after_commit_rate > 0
            and self.rng.random() < self.timeout_after_commit_rate
        ):
            return AfterCommit.HANG
        return AfterCommit.ANSWER


class SlidingWindowLimiter:
    """At most `requests_per_minute` requests per key in any 60 s window (0 turns it off)."""

    window_seconds = 60.0

    def __init__(
        self, requests_per_minute: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.requests_per_minute = requests_per_minute
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def acquire(self, key: str) -> float | None:
        """Count one request; None when allowed, else the seconds until a slot frees."""
        if self.requests_per_minute <= 0:
            return None
        now = self._clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window_seconds:
            hits.popleft()
        if len(hits) >= self.requests_per_minute:
            oldest = hits[len(hits) - self.requests_per_minute]
            return max(oldest + self.window_seconds - now, 0.0)
        hits.append(now)
        return None

    def reset(self) -> None:
        """Forget every counted request."""
        self._hits.clear()


def retry_after_header(seconds: float) -> str:
    """Format a wait as an HTTP Retry-After value: whole seconds, rounded up, at least 1."""
    return str(max(math.ceil(seconds), 1))


@dataclass
class DeliveryFaults:
    """Webhook delivery faults, all off by default; rates are probabilities in 0..1."""

    duplicate_rate: float = 0.0
    drop_rate: float = 0.0
    reorder_window: int = 0  # hold up to N events, deliver them shuffled (0/1 = in order)
    delay_ms: int = 0  # wait before each delivery
    rng: random.Random = field(default_factory=lambda: random.Random(0), repr=False)

    def shape(self, events: Sequence[T]) -> tuple[list[T], list[T]]:
        """Apply drop, duplicate and reorder to a batch; returns (to_send, dropped)."""
        kept: list[T] = []
        dropped: list[T] = []
        for event in events:
            if self.drop_rate > 0 and self.rng.random() < self.drop_rate:
                dropped.append(event)
                continue
            kept.append(event)
            if self.duplicate_rate > 0 and self.rng.random() < self.duplicate_rate:
                kept.append(event)
        if self.reorder_window <= 1:
            return kept, dropped
        shuffled: list[T] = []
        for start in range(0, len(kept), self.reorder_window):
            window = kept[start : start + self.reorder_window]
            self.rng.shuffle(window)
            shuffled.extend(window)
        return shuffled, dropped
