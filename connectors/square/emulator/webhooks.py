"""Square webhooks: event bodies, HMAC signatures, and delivery with faults on demand.

Body (fixed when the change happens; every delivery of an event sends the same bytes):

    {"merchant_id", "type", "event_id", "created_at",
     "data": {"type": "loyalty_account" | "loyalty_event", "id",
              "object": {"loyalty_account": {...}} | {"loyalty_event": {...}}}}

Headers: `content-type: application/json`, `x-square-hmacsha256-signature` =
base64(HMAC-SHA256(signature key, notification URL + body)), and on retries
`square-retry-number` (1, 2, ...), `square-retry-reason` (`http_timeout`, `http_error` for a
non-2xx answer, `connection_error`) and `square-initial-delivery-timestamp`. The notification
URL that is signed is the one "registered at Square": by default the URL posted to, but it can
differ (a proxy in front of syncd). `on_change` queues; `await flush()` sends everything now
(in-process tests); `run()` is the background sender of the served app. An answer that is not
2xx within `webhook_timeout_seconds` is retried after each of `webhook_retry_gaps_seconds`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass

import anyio
import httpx

from connectors.square.emulator.knobs import SquareKnobs
from connectors.square.emulator.loyalty import Notification
from connectors.square.emulator.wire import Clock, IdFactory, Json, rfc3339

SIGNATURE_HEADER = "x-square-hmacsha256-signature"
MAX_QUEUED = 10_000
POLL_SECONDS = 0.02


def sign(signature_key: str, notification_url: str, body: bytes) -> str:
    """base64(HMAC-SHA256(key, notification URL + raw body)), as Square signs."""
    digest = hmac.new(signature_key.encode(), notification_url.encode() + body, hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


@dataclass(frozen=True)
class WebhookEvent:
    """One emitted event: its id, type, the object it is about, and its body."""

    event_id: str
    event_type: str
    object_id: str
    body: str

    def summary(self) -> Json:
        """A JSON-ready description for logs."""
        return {"event_id": self.event_id, "type": self.event_type, "object_id": self.object_id}


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
    """Builds, queues, shapes, signs and sends webhook events; logs every attempt."""

    def __init__(
        self,
        knobs: SquareKnobs,
        clock: Clock,
        ids: IdFactory,
        *,
        merchant_id: str,
        signature_key: str,
        url: str | None = None,
        notification_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.knobs = knobs
        self.clock = clock
        self.ids = ids
        self.merchant_id = merchant_id
        self.signature_key = signature_key
        self.url = url
        self.notification_url = notification_url
        self.transport = transport  # e.g. httpx.ASGITransport(receiver) for in-process tests
        self.events: list[WebhookEvent] = []
        self.pending: deque[tuple[float, WebhookEvent]] = deque()
        self.attempts: list[DeliveryAttempt] = []
        self.dropped: list[WebhookEvent] = []
        self._lock = threading.Lock()

    @property
    def signed_url(self) -> str | None:
        """The notification URL in the signature: as registered, else the target URL."""
        return self.notification_url or self.url

    def signature_for(self, body: str) -> str:
        """The signature header value of `body` under the current key and URL."""
        return sign(self.signature_key, self.signed_url or "", body.encode())

    def on_change(self, change: Notification) -> None:
        """Model listener: build the event body and queue it."""
        event_id = self.ids.uuid()
        body = {
            "merchant_id": self.merchant_id,
            "type": change.event_type,
            "event_id": event_id,
            "created_at": rfc3339(change.at, "ms"),
            "data": {"type": change.data_type, "id": change.object_id, "object": change.object},
        }
        event = WebhookEvent(event_id, change.event_type, change.object_id, json.dumps(body))
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

    def log(self) -> Json:
        """The admin view: target, queued, dropped and every attempt."""
        with self._lock:
            return {
                "url": self.url,
                "notification_url": self.signed_url,
                "events": [e.summary() for e in self.events],
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
        to_send, dropped = self.knobs.delivery.shape(self._take())
        self.dropped.extend(dropped)
        async with httpx.AsyncClient(transport=self.transport) as client:
            for event in to_send:
                await self._deliver(client, event)
        return self.attempts[first:]

    async def run(self) -> None:
        """Background sender: deliver continuously while the app is served (cancel to stop)."""
        client = httpx.AsyncClient(transport=self.transport)
        async with client, anyio.create_task_group() as group:
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
        if self.url is None or not self.pending:
            return []
        window = self.knobs.delivery.reorder_window
        if window <= 1:
            return self._take()
        held_for = time.monotonic() - self.pending[0][0]
        if len(self.pending) < window and held_for * 1000 < self.knobs.webhook_hold_ms:
            return []
        return self._take(window)

    async def _deliver(self, client: httpx.AsyncClient, event: WebhookEvent) -> bool:
        """POST one event, retrying after each gap until it is answered 2xx in time."""
        if self.knobs.delivery.delay_ms > 0:
            await anyio.sleep(self.knobs.delivery.delay_ms / 1000)
        gaps = list(self.knobs.webhook_retry_gaps_seconds)
        first_at = rfc3339(self.clock(), "ms")
        reason: str | None = None
        for attempt in range(1, len(gaps) + 2):
            url = self.url
            if url is None:
                return False
            headers = {
                "content-type": "application/json",
                SIGNATURE_HEADER: self.signature_for(event.body),
            }
            if attempt > 1:
                headers |= {
                    "square-retry-number": str(attempt - 1),
                    "square-retry-reason": reason or "http_error",
                    "square-initial-delivery-timestamp": first_at,
                }
            result = await self._post(client, url, event, attempt, headers)
            self.attempts.append(result)
            if result.ok:
                return True
            reason = _retry_reason(result)
            if attempt <= len(gaps):
                await anyio.sleep(gaps[attempt - 1])
        return False

    async def _post(
        self,
        client: httpx.AsyncClient,
        url: str,
        event: WebhookEvent,
        attempt: int,
        headers: dict[str, str],
    ) -> DeliveryAttempt:
        timeout = self.knobs.webhook_timeout_seconds
        started = time.monotonic()
        at = rfc3339(self.clock(), "ms")
        status: int | None = None
        error: str | None = None
        with anyio.move_on_after(timeout) as scope:
            try:
                response = await client.post(
                    url, content=event.body.encode(), headers=headers, timeout=timeout
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


def _retry_reason(attempt: DeliveryAttempt) -> str:
    if attempt.error == "timeout":
        return "http_timeout"
    return "connection_error" if attempt.error else "http_error"
