"""Webhook delivery for every emulator: a queue of events, sent like a vendor sends them, with
faults on demand.

    dispatcher = WebhookDispatcher(knobs, build, clock, headers=headers, url=..., transport=...)
    state.listeners.append(dispatcher.on_change)   # build(change) -> event, queued
    await dispatcher.flush()                       # in-process tests: send everything now
    dispatcher.run()                               # the served app's background sender

A vendor says how a change becomes an event (`build`: sign a JWT, serialise a body) and which
headers each try carries (`headers(event, retry)`: a signature, retry counters); a vendor whose
body changes on a retry (HubSpot counts `attemptNumber` in it) also passes
`content(event, retry)`, the text of each try (by default `event.body`); everything
else is the same for all: every event is kept in `events`; with no target URL events stay
queued; delivery faults (`knobs.delivery`) drop, duplicate, delay and shuffle events; an
answer that is not 2xx or takes longer than `webhook_timeout_seconds` is retried after each
of `webhook_retry_gaps_seconds` (the vendor's hours or days, compressed); every try is logged
as a `DeliveryAttempt`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Generic, Protocol, TypeVar

import anyio
import httpx

from syncd.sandbox.faults import DeliveryFaults
from syncd.sandbox.wire import Clock, Json, utc_millis

MAX_QUEUED = 10_000  # oldest events are forgotten beyond this, so a long demo cannot grow forever
POLL_SECONDS = 0.02


class Deliverable(Protocol):
    """What the dispatcher needs of an event: ids for the log and the bytes to send."""

    @property
    def event_id(self) -> str: ...

    @property
    def event_type(self) -> str: ...

    @property
    def body(self) -> str:
        """The text sent on the first try (and on every retry unless the dispatcher's
        `content` says otherwise)."""
        ...

    def summary(self) -> Json:
        """A JSON-ready description for the admin log."""
        ...


class DeliveryKnobs(Protocol):
    """The knobs the dispatcher reads (every vendor's knobs have them)."""

    webhook_timeout_seconds: float
    webhook_retry_gaps_seconds: tuple[float, ...]
    webhook_hold_ms: int  # how long the background sender waits to fill a reorder window
    delivery: DeliveryFaults


ChangeT = TypeVar("ChangeT")
EventT = TypeVar("EventT", bound=Deliverable)


@dataclass(frozen=True)
class DeliveryAttempt:
    """One POST of one event: which try, what came back, how long it took."""

    event_id: str
    event_type: str
    attempt: int
    url: str
    status: int | None
    error: str | None
    duration_ms: int
    at: str

    @property
    def ok(self) -> bool:
        """Whether this attempt counts as delivered."""
        return self.error is None and self.status is not None and 200 <= self.status < 300

    def to_json(self) -> Json:
        """The admin view of the attempt, with `ok`."""
        return asdict(self) | {"ok": self.ok}


@dataclass(frozen=True)
class Retry:
    """What a retried delivery knows when its headers are made."""

    number: int  # 1 on the first retry
    previous: DeliveryAttempt  # the try that failed just before
    first_at: str  # when the first try was made (utc_millis)


class WebhookDispatcher(Generic[ChangeT, EventT]):
    """Queues, shapes and sends webhook events; keeps a log of every attempt."""

    def __init__(
        self,
        knobs: DeliveryKnobs,
        build: Callable[[ChangeT], EventT],
        clock: Clock,
        *,
        headers: Callable[[EventT, Retry | None], dict[str, str]],
        url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        content: Callable[[EventT, Retry | None], str] | None = None,
    ) -> None:
        self.knobs = knobs
        self.build = build
        self.headers = headers
        self.content = content or (lambda event, retry: event.body)
        self.clock = clock
        self.url = url
        self.transport = transport  # e.g. httpx.ASGITransport(receiver) for in-process tests
        self.events: list[EventT] = []
        self.pending: deque[tuple[float, EventT]] = deque()
        self.attempts: list[DeliveryAttempt] = []
        self.dropped: list[EventT] = []
        self._lock = threading.Lock()

    def on_change(self, change: ChangeT) -> None:
        """Model listener: turn the change into an event and queue it."""
        event = self.build(change)
        with self._lock:
            self.events.append(event)
            self.pending.append((time.monotonic(), event))
            while len(self.pending) > MAX_QUEUED:
                self.pending.popleft()
            if len(self.events) > MAX_QUEUED:
                del self.events[: len(self.events) - MAX_QUEUED]

    def reset(self) -> None:
        """Forget every event, queued or sent, and the attempt log."""
        with self._lock:
            self.events.clear()
            self.pending.clear()
            self.attempts.clear()
            self.dropped.clear()

    def log_head(self) -> Json:
        """The first keys of `log()`: where events go (a vendor may add its own)."""
        return {"url": self.url}

    def log(self) -> Json:
        """The admin view: target, queued, dropped and every attempt."""
        with self._lock:
            return self.log_head() | {
                "pending": [e.summary() for _t, e in self.pending],
                "dropped": [e.summary() for e in self.dropped],
                "attempts": [a.to_json() for a in self.attempts],
            }

    def _take(self, limit: int | None = None) -> list[EventT]:
        with self._lock:
            count = len(self.pending) if limit is None else min(limit, len(self.pending))
            return [self.pending.popleft()[1] for _ in range(count)]

    async def flush(self) -> list[DeliveryAttempt]:
        """Send every queued event now (shaped, retries awaited); returns the attempts made."""
        if self.url is None:
            return []
        first = len(self.attempts)
        to_send, dropped = self.knobs.delivery.shape(self._take())
        self.dropped.extend(dropped)
        async with self._client() as client:
            for event in to_send:
                await self._deliver(client, event)
        return self.attempts[first:]

    async def run(self) -> None:
        """Background sender: deliver continuously while the app is served (cancel to stop)."""
        async with self._client() as client, anyio.create_task_group() as group:
            while True:
                await anyio.sleep(POLL_SECONDS)
                batch = self._ready_batch()
                if not batch:
                    continue
                to_send, dropped = self.knobs.delivery.shape(batch)
                self.dropped.extend(dropped)
                for event in to_send:
                    group.start_soon(self._deliver, client, event)

    def _ready_batch(self) -> list[EventT]:
        """The events to send now: all of them, or a full (or long-held) reorder window."""
        if self.url is None or not self.pending:
            return []
        window = self.knobs.delivery.reorder_window
        if window <= 1:
            return self._take()
        held_for = time.monotonic() - self.pending[0][0]
        if len(self.pending) < window and held_for * 1000 < self.knobs.webhook_hold_ms:
            return []
        return self._take(window)

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport)

    async def _deliver(self, client: httpx.AsyncClient, event: EventT) -> bool:
        """POST one event, retrying after each gap until it is answered 2xx in time."""
        if self.knobs.delivery.delay_ms > 0:
            await anyio.sleep(self.knobs.delivery.delay_ms / 1000)
        gaps = list(self.knobs.webhook_retry_gaps_seconds)
        first_at = utc_millis(self.clock())
        retry: Retry | None = None
        for attempt in range(1, len(gaps) + 2):
            url = self.url
            if url is None:
                return False
            text, headers = self.content(event, retry), self.headers(event, retry)
            result = await self._post(client, url, event, attempt, text, headers)
            self.attempts.append(result)
            if result.ok:
                return True
            retry = Retry(attempt, result, first_at)
            if attempt <= len(gaps):
                await anyio.sleep(gaps[attempt - 1])
        return False

    async def _post(
        self,
        client: httpx.AsyncClient,
        url: str,
        event: EventT,
        attempt: int,
        text: str,
        headers: dict[str, str],
    ) -> DeliveryAttempt:
        timeout = self.knobs.webhook_timeout_seconds
        started = time.monotonic()
        at = utc_millis(self.clock())
        status: int | None = None
        error: str | None = None
        with anyio.move_on_after(timeout) as scope:
            try:
                response = await client.post(
                    url, content=text.encode(), headers=headers, timeout=timeout
                )
                status = response.status_code
            except httpx.TimeoutException:
                error = "timeout"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        elapsed = time.monotonic() - started
        if scope.cancelled_caught or (error is None and elapsed > timeout):
            error = "timeout"
        return DeliveryAttempt(
            event.event_id, event.event_type, attempt, url, status, error, int(elapsed * 1000), at
        )
