"""HubSpot webhooks: subscriptions, batched event bodies, v1 and v3 signatures, delivery.

Subscriptions (the app's, fixed): `contact.creation`, `contact.deletion`, `contact.merge`, and
`contact.propertyChange` for the points property and `email`. A change becomes one event:

    {"eventId", "subscriptionId", "portalId", "appId", "occurredAt" (epoch ms),
     "subscriptionType", "attemptNumber", "objectId", "changeSource", "sourceId"?,
     "propertyName", "propertyValue"}                           (contact.propertyChange)
     + "primaryObjectId", "mergedObjectIds", "newObjectId",
       "numberOfPropertiesMoved"                                (contact.merge)

Events wait `webhook_batch_hold_ms` for company and are POSTed as a JSON array of at most
`webhook_batch_size`; `flush()` and reading `batches` close the batch being filled at once.
Each try counts `attemptNumber` up from 0 in the body and is signed afresh:

    X-HubSpot-Signature-v3       base64(HMAC-SHA256(client secret, "POST" + URI + body +
                                 timestamp)), URI = the target URL as registered at HubSpot
                                 with %3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B decoded
    X-HubSpot-Request-Timestamp  epoch ms of the try
    X-HubSpot-Signature          v1: hex(SHA-256(client secret + body)), with
    X-HubSpot-Signature-Version  "v1"

The queue, delivery faults (acting on whole POSTs), retries after each of
`webhook_retry_gaps_seconds` and the attempt log are the shared dispatcher's
(`syncd.sandbox.delivery`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from dataclasses import dataclass

import anyio
import httpx

from connectors.hubspot.emulator.knobs import HubSpotKnobs
from connectors.hubspot.emulator.state import ContactChange
from connectors.hubspot.emulator.wire import Clock, IdFactory, Json, epoch_millis
from syncd.sandbox import delivery
from syncd.sandbox.delivery import DeliveryAttempt, Retry

__all__ = [
    "DeliveryAttempt",
    "Subscription",
    "WebhookBatch",
    "WebhookDispatcher",
    "sign_v3",
    "signed_uri",
]

SIGNATURE_V3 = "X-HubSpot-Signature-v3"
TIMESTAMP = "X-HubSpot-Request-Timestamp"
SIGNATURE_V1 = "X-HubSpot-Signature"
SIGNATURE_VERSION = "X-HubSpot-Signature-Version"
DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_ESCAPE = re.compile("|".join(DECODED), re.IGNORECASE)
SEAL_POLL_SECONDS = 0.02


def signed_uri(url: str) -> str:
    """The URL as it enters a v3 signature: HubSpot's listed %-escapes decoded."""
    return _ESCAPE.sub(lambda m: DECODED[m.group(0).upper()], url)


def sign_v3(
    client_secret: str, url: str, body: str, timestamp_ms: int, method: str = "POST"
) -> str:
    """The X-HubSpot-Signature-v3 value of one request."""
    message = f"{method}{signed_uri(url)}{body}{timestamp_ms}".encode()
    digest = hmac.new(client_secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def sign_v1(client_secret: str, body: str) -> str:
    """The X-HubSpot-Signature (v1) value of a webhook body."""
    return hashlib.sha256(f"{client_secret}{body}".encode()).hexdigest()


@dataclass(frozen=True)
class Subscription:
    """One of the app's webhook subscriptions."""

    id: int
    type: str  # e.g. "contact.propertyChange"
    property_name: str | None = None

    def covers(self, change: ContactChange) -> bool:
        """Whether `change` is an event of this subscription."""
        if self.type != f"contact.{change.kind}":
            return False
        return self.property_name is None or self.property_name == change.property_name


def default_subscriptions(points_property: str) -> list[Subscription]:
    """The subscriptions the `hubspot` connector asks for."""
    return [
        Subscription(2_841_101, "contact.creation"),
        Subscription(2_841_102, "contact.deletion"),
        Subscription(2_841_103, "contact.merge"),
        Subscription(2_841_104, "contact.propertyChange", points_property),
        Subscription(2_841_105, "contact.propertyChange", "email"),
    ]


@dataclass(frozen=True)
class WebhookBatch:
    """One POST: events sealed together at `timestamp_ms`; `body` is the first try's."""

    event_id: str  # the batch's own id, for the attempt log
    events: tuple[Json, ...]
    timestamp_ms: int

    @property
    def event_type(self) -> str:
        """The subscription types in the batch, comma-separated."""
        return ",".join(sorted({str(e["subscriptionType"]) for e in self.events}))

    @property
    def body(self) -> str:
        """The JSON array sent on the first try (attemptNumber 0)."""
        return self.render(0)

    def render(self, attempt: int) -> str:
        """The JSON array sent on try `attempt` (0 first)."""
        return json.dumps([e | {"attemptNumber": attempt} for e in self.events])

    def summary(self) -> Json:
        """A JSON-ready description for logs."""
        return {
            "batch_id": self.event_id,
            "timestamp_ms": self.timestamp_ms,
            "events": [
                {
                    k: e[k]
                    for k in ("eventId", "subscriptionType", "objectId", "propertyName")
                    if k in e
                }
                for e in self.events
            ],
        }


class WebhookDispatcher(delivery.WebhookDispatcher[tuple[Json, ...], WebhookBatch]):
    """Gathers events into batches; signs, queues, shapes and sends them; logs every try."""

    knobs: HubSpotKnobs

    def __init__(
        self,
        knobs: HubSpotKnobs,
        clock: Clock,
        ids: IdFactory,
        *,
        portal_id: int,
        app_id: int,
        client_secret: str,
        points_property: str,
        url: str | None = None,
        target_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            knobs,
            self._batch,
            clock,
            headers=self._headers,
            url=url,
            transport=transport,
            content=lambda batch, retry: batch.render(retry.number if retry else 0),
        )
        self.ids = ids
        self.portal_id = portal_id
        self.app_id = app_id
        self.client_secret = client_secret
        self.target_url = target_url
        self.subscriptions = default_subscriptions(points_property)
        self._open: list[Json] = []
        self._opened_at = 0.0
        self._open_lock = threading.Lock()

    @property
    def signed_url(self) -> str:
        """The URL in the v3 signature: as registered at HubSpot, else the one posted to."""
        return self.target_url or self.url or ""

    @property
    def batches(self) -> list[WebhookBatch]:
        """Every batch made so far, oldest first (the one being filled is closed first)."""
        self.seal()
        return list(self.events)

    def log_head(self) -> Json:
        """Where batches go (target and signed URL) and what the app subscribes to."""
        return {
            "url": self.url,
            "target_url": self.signed_url,
            "subscriptions": [
                {"id": s.id, "type": s.type, "propertyName": s.property_name}
                for s in self.subscriptions
            ],
        }

    def headers_for(self, body: str, timestamp_ms: int | None = None) -> dict[str, str]:
        """The headers HubSpot sends with `body` at `timestamp_ms` (default: now)."""
        stamp = epoch_millis(self.clock()) if timestamp_ms is None else timestamp_ms
        return {
            "Content-Type": "application/json",
            SIGNATURE_V1: sign_v1(self.client_secret, body),
            SIGNATURE_VERSION: "v1",
            SIGNATURE_V3: sign_v3(self.client_secret, self.signed_url, body, stamp),
            TIMESTAMP: str(stamp),
        }

    def notify(self, change: ContactChange) -> None:
        """Model listener: one event per subscription the change falls under."""
        events = [self._event(change, s) for s in self.subscriptions if s.covers(change)]
        if not events:
            return
        with self._open_lock:
            if not self._open:
                self._opened_at = time.monotonic()
            self._open.extend(events)
            full = len(self._open) >= self.knobs.webhook_batch_size
        if full:
            self.seal()

    def seal(self) -> None:
        """Close the batch being filled (split at `webhook_batch_size`) and queue it."""
        with self._open_lock:
            events, self._open = self._open, []
        size = max(self.knobs.webhook_batch_size, 1)
        for start in range(0, len(events), size):
            self.on_change(tuple(events[start : start + size]))

    def reset(self) -> None:
        """Forget every event, open, queued or sent, and the attempt log."""
        with self._open_lock:
            self._open = []
        super().reset()

    async def flush(self) -> list[DeliveryAttempt]:
        """Close the open batch and send everything queued now; returns the attempts made."""
        self.seal()
        return await super().flush()

    async def run(self) -> None:
        """Background sender: close batches held long enough, and deliver them."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._seal_held)
            await super().run()

    async def _seal_held(self) -> None:
        while True:
            await anyio.sleep(SEAL_POLL_SECONDS)
            with self._open_lock:
                held = time.monotonic() - self._opened_at
                due = bool(self._open) and held * 1000 >= self.knobs.webhook_batch_hold_ms
            if due:
                self.seal()

    def _batch(self, events: tuple[Json, ...]) -> WebhookBatch:
        return WebhookBatch(self.ids.uuid(), events, epoch_millis(self.clock()))

    def _event(self, change: ContactChange, subscription: Subscription) -> Json:
        event: Json = {
            "eventId": self.ids.number(10),
            "subscriptionId": subscription.id,
            "portalId": self.portal_id,
            "appId": self.app_id,
            "occurredAt": epoch_millis(change.at),
            "subscriptionType": subscription.type,
            "attemptNumber": 0,
            "objectId": int(change.object_id),
            "changeSource": change.source.type,
        }
        if change.source.id is not None:
            event["sourceId"] = change.source.id
        if change.kind == "propertyChange":
            event["propertyName"] = change.property_name
            event["propertyValue"] = change.value
        if change.kind == "merge":
            event["primaryObjectId"] = int(change.object_id)
            event["mergedObjectIds"] = [int(i) for i in change.merged_ids]
            event["newObjectId"] = int(change.object_id)
            event["numberOfPropertiesMoved"] = change.properties_moved
        return event

    def _headers(self, batch: WebhookBatch, retry: Retry | None) -> dict[str, str]:
        return self.headers_for(batch.render(retry.number if retry else 0))
