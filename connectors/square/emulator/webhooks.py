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
differ (a proxy in front of syncd). The queue, delivery faults, retries after each of
`webhook_retry_gaps_seconds` and the attempt log are the shared dispatcher's
(`syncd.sandbox.delivery`); this module says how a change becomes a Square event and which
headers each try carries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

import httpx

from connectors.square.emulator.knobs import SquareKnobs
from connectors.square.emulator.loyalty import Notification
from connectors.square.emulator.wire import Clock, IdFactory, Json, rfc3339
from syncd.sandbox import delivery
from syncd.sandbox.delivery import DeliveryAttempt, Retry

__all__ = ["SIGNATURE_HEADER", "DeliveryAttempt", "WebhookDispatcher", "WebhookEvent", "sign"]

SIGNATURE_HEADER = "x-square-hmacsha256-signature"


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


class WebhookDispatcher(delivery.WebhookDispatcher[Notification, WebhookEvent]):
    """Builds, queues, shapes, signs and sends Square webhook events; logs every attempt."""

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
        super().__init__(
            knobs, self._event, clock, headers=self._headers, url=url, transport=transport
        )
        self.ids = ids
        self.merchant_id = merchant_id
        self.signature_key = signature_key
        self.notification_url = notification_url

    @property
    def signed_url(self) -> str | None:
        """The notification URL in the signature: as registered, else the target URL."""
        return self.notification_url or self.url

    def signature_for(self, body: str) -> str:
        """The signature header value of `body` under the current key and URL."""
        return sign(self.signature_key, self.signed_url or "", body.encode())

    def log_head(self) -> Json:
        """Where events go (target and signed URL), then every event."""
        return {
            "url": self.url,
            "notification_url": self.signed_url,
            "events": [e.summary() for e in self.events],
        }

    def _event(self, change: Notification) -> WebhookEvent:
        """The event body for a model change, fixed now for every delivery."""
        event_id = self.ids.uuid()
        body = {
            "merchant_id": self.merchant_id,
            "type": change.event_type,
            "event_id": event_id,
            "created_at": rfc3339(change.at, "ms"),
            "data": {"type": change.data_type, "id": change.object_id, "object": change.object},
        }
        return WebhookEvent(event_id, change.event_type, change.object_id, json.dumps(body))

    def _headers(self, event: WebhookEvent, retry: Retry | None) -> dict[str, str]:
        """JSON, signed under the current key and URL; retries say which, why and since when."""
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: self.signature_for(event.body),
        }
        if retry is not None:
            headers |= {
                "square-retry-number": str(retry.number),
                "square-retry-reason": _retry_reason(retry.previous),
                "square-initial-delivery-timestamp": retry.first_at,
            }
        return headers


def _retry_reason(attempt: DeliveryAttempt) -> str:
    if attempt.error == "timeout":
        return "http_timeout"
    return "connection_error" if attempt.error else "http_error"
