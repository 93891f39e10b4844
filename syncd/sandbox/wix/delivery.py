"""How Wix delivers webhooks: the signed JWT as `text/plain`, the same headers on every try.

The queue, delivery faults, retries after `webhook_retry_gaps_seconds` (Wix's two days,
compressed) and the attempt log are the shared dispatcher's (`syncd.sandbox.delivery`); this
module only fixes what Wix puts on the wire around the JWT `webhooks.EventSigner` makes.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from syncd.sandbox import delivery
from syncd.sandbox.delivery import DeliveryAttempt, Retry
from syncd.sandbox.wix.knobs import WixKnobs
from syncd.sandbox.wix.model import Change
from syncd.sandbox.wix.webhooks import WebhookEvent
from syncd.sandbox.wix.wire import Clock

__all__ = ["DeliveryAttempt", "WebhookDispatcher"]

HEADERS = {"content-type": "text/plain; charset=utf-8"}


def wix_headers(event: WebhookEvent, retry: Retry | None) -> dict[str, str]:
    """Wix sends the JWT as plain text and says nothing about retries."""
    return dict(HEADERS)


class WebhookDispatcher(delivery.WebhookDispatcher[Change, WebhookEvent]):
    """Queues, shapes and sends Wix webhook events; keeps a log of every attempt."""

    def __init__(
        self,
        knobs: WixKnobs,
        sign: Callable[[Change], WebhookEvent],
        clock: Clock,
        *,
        url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(knobs, sign, clock, headers=wix_headers, url=url, transport=transport)
        self.sign = sign
