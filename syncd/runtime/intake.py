"""Webhook intake: verify on the raw body, store once, mark the link dirty, answer at once.

No remote call happens before the answer (Wix gives 1,250 ms). Anything that does not verify
is answered 401 and leaves nothing stored; a body over the limit is 413; a redelivery of a
stored event is acknowledged (200) and dropped. Payload values are hints: the worker re-reads
both balances before it writes anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.base import Connector
from syncd.clock import utcnow
from syncd.errors import WebhookRejected
from syncd.logs import event, get_logger
from syncd.runtime.dirty import record_change
from syncd.runtime.metrics import Metrics
from syncd.wix.webhooks import MAX_BODY_BYTES, load_public_key, verify

log = get_logger(__name__)
WIX = "wix"


@dataclass
class Intake:
    engine: Engine
    connectors: Mapping[str, Connector]
    metrics: Metrics
    wake: asyncio.Event
    wix_public_key: str | None
    on_program_event: Callable[[], None] = lambda: None

    def routes(self) -> list[Route]:
        return [
            Route("/webhooks/wix", self.wix, methods=["POST"]),
            Route("/webhooks/{connector}", self.connector, methods=["POST"]),
        ]

    async def wix(self, request: Request) -> Response:
        raw = await _body(request)
        if isinstance(raw, Response):
            return self._refused(WIX, raw)
        if self.wix_public_key is None:
            return self._refused(WIX, _text(401, "wix.webhook_public_key is not configured"))
        try:
            verified = verify(raw, load_public_key(self.wix_public_key), now=utcnow())
        except WebhookRejected as error:
            event(log, "webhook.rejected", source=WIX, reason=error.reason)
            return self._refused(WIX, _text(401, "not a verifiable Wix webhook"))
        if verified.event_type.startswith("wix.loyalty.v1.program"):
            self.on_program_event()
        self._store(WIX, verified.event_id, verified.event_type, verified.account_id, WIX)
        return JSONResponse({"ok": True})

    async def connector(self, request: Request) -> Response:
        name = request.path_params["connector"]
        target = self.connectors.get(name)
        if target is None:
            return _text(404, f"no connector named {name!r}")
        raw = await _body(request)
        if isinstance(raw, Response):
            return self._refused(name, raw)
        try:
            events = target.verify_webhook(raw, request.headers, now=utcnow())
        except WebhookRejected as error:
            event(log, "webhook.rejected", source=name, reason=error.reason)
            return self._refused(name, _text(401, "not a verifiable webhook"))
        for verified in events:
            self._store(
                name,
                verified.event_id,
                verified.event_type,
                verified.account_id,
                name,
                merged_ids=verified.merged_ids,
            )
        return JSONResponse({"ok": True})

    def _store(
        self,
        source: str,
        event_id: str,
        event_type: str,
        account_id: str | None,
        side: str,
        *,
        merged_ids: tuple[str, ...] = (),
    ) -> None:
        """Keep the event once and mark its link dirty (one transaction); wake the workers."""
        where = (
            {"wix_account_id": account_id}
            if side == WIX
            else {"connector": side, "external_id": account_id}
        )
        outcome = record_change(
            self.engine,
            source=source,
            event_id=event_id,
            event_type=event_type,
            now=utcnow(),
            merged_ids=merged_ids,
            **where,
        )
        if outcome == "duplicate":
            self.metrics.inc("syncd_webhooks_duplicate_total", source=source)
            return
        self.metrics.inc("syncd_webhooks_received_total", source=source)
        self.wake.set()  # a linked account to sync, or a new one for the matcher

    def _refused(self, source: str, response: Response) -> Response:
        """Count a webhook refused for what it is (signature, size); a sender that went away
        mid-body (400) is not a rejection, and retries anyway."""
        if response.status_code != 400:
            self.metrics.inc("syncd_webhooks_rejected_total", source=source)
        return response


async def _body(request: Request) -> bytes | Response:
    """The raw body, or the answer that refuses it (too large, or the sender went away)."""
    declared = request.headers.get("content-length")
    if declared is not None and (
        not (declared.isascii() and declared.isdigit()) or int(declared) > MAX_BODY_BYTES
    ):
        return _text(413, "body too large")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return _text(413, "body too large")
            chunks.append(chunk)
    except ClientDisconnect:
        return _text(400, "the sender went away")
    if not size:
        return _text(401, "empty body: nothing to verify")
    return b"".join(chunks)


def _text(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)
