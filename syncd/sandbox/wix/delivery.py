"""Webhook delivery: a queue of signed events, sent like Wix sends them, with faults on demand.

`on_change` (a model listener) signs and queues each event; every event is also kept in
`events`. `await flush()` sends everything queued, one by one (in-process tests); `run()` is
the background sender the served app starts in its lifespan. With no target URL, events stay
queued. Delivery faults (`knobs.delivery`) drop, duplicate, delay and shuffle events; an
answer that is not 2xx or takes longer than `webhook_timeout_seconds` is retried after each
of `webhook_retry_gaps_seconds` (Wix's two days, compressed). Every attempt is logged.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import anyio
import httpx

from syncd.sandbox.wix.knobs import WixKnobs
from syncd.sandbox.wix.model import Change
from syncd.sandbox.wix.webhooks import WebhookEvent
from syncd.sandbox.wix.wire import Clock, iso

MAX_QUEUED = 10_000  # oldest events are forgotten beyond this, so a long demo cannot grow forever
POLL_SECONDS = 0.02


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


class WebhookDispatcher:
    """Queues, shapes and sends webhook events; keeps a log of every attempt."""

    def __init__(
        self,
        knobs: WixKnobs,
        sign: Callable[[Change], WebhookEvent],
        clock: Clock,
        *,
        url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.knobs = knobs
        self.sign = sign
        self.clock = clock
        self.url = url
        self.transport = transport  # e.g. httpx.ASGITransport(receiver) for in-process tests
        self.events: list[WebhookEvent] = []
        self.pending: deque[tuple[float, WebhookEvent]] = deque()
        self.attempts: list[DeliveryAttempt] = []
        self.dropped: list[WebhookEvent] = []
        self._lock = threading.Lock()

    def on_change(self, change: Change) -> None:
        """Model listener: sign the change and queue it."""
        event = self.sign(change)
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

    def log(self) -> dict[str, Any]:
        """The admin view: queued, dropped and every attempt."""
        with self._lock:
            return {
                "url": self.url,
                "pending": [e.summary() for _t, e in self.pending],
                "dropped": [e.summary() for e in self.dropped],
                "attempts": [asdict(a) | {"ok": a.ok} for a in self.attempts],
            }

    def _take(self, limit: int | None = None) -> list[WebhookEvent]:
        with self._lock:
            count = len(self.pending) if limit is None else min(limit, len(self.pending))
            return [self.pending.popleft()[1] for _ in range(count)]

    async def flush(self) -> list[DeliveryAttempt]:
        """Send every queued event now (shaped, retries awaited); returns the attempts made."""
        if self.url is None:
            return []
        first = len(self.attempts)
        batch = self._take()
        to_send, dropped = self.knobs.delivery.shape(batch)
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

    def _ready_batch(self) -> list[WebhookEvent]:
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

    async def _deliver(self, client: httpx.AsyncClient, event: WebhookEvent) -> bool:
        """POST one event, retrying after each gap until it is answered 2xx in time."""
        if self.knobs.delivery.delay_ms > 0:
            await anyio.sleep(self.knobs.delivery.delay_ms / 1000)
        gaps = list(self.knobs.webhook_retry_gaps_seconds)
        for attempt in range(1, len(gaps) + 2):
            url = self.url
            if url is None:
                return False
            result = await self._post(client, url, event, attempt)
            self.attempts.append(result)
            if result.ok:
                return True
            if attempt <= len(gaps):
                await anyio.sleep(gaps[attempt - 1])
        return False

    async def _post(
        self, client: httpx.AsyncClient, url: str, event: WebhookEvent, attempt: int
    ) -> DeliveryAttempt:
        timeout = self.knobs.webhook_timeout_seconds
        started = time.monotonic()
        at = iso(self.clock())
        status: int | None = None
        error: str | None = None
        with anyio.move_on_after(timeout) as scope:
            try:
                response = await client.post(
                    url,
                    content=event.body.encode(),
                    headers={"content-type": "text/plain; charset=utf-8"},
                    timeout=timeout,
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
            event.id, event.event_type, attempt, url, status, error, int(elapsed * 1000), at
        )
