"""Webhook intake: verify on the raw body, store once, mark the link dirty, answer at once.

Echoes of syncd's own writes are stored but mark nothing: an event passes the balance it
reports (Wix `points.balance`, Square `loyalty_account.balance`) and a link whose base equals
it, while no sync holds the link, is left as it is (`ChangeEvent`); a Square adjustment with
syncd's tag in its reason marks nothing at all.

No remote call happens before the answer (Wix gives 1,250 ms). Anything that does not verify
is answered 401 and leaves nothing stored; a body over the limit is 413; a redelivery of a
stored event is acknowledged (200) and dropped. Payload values are hints: the worker re-reads
both balances before it writes anything.

Storing is a group commit: each handler hands its verified events to the `InboxWriter` and
waits; the writer keeps every event waiting in one transaction (inbox rows and dirty marks
together), off the event loop, then wakes each handler with its event's outcome. So an event
is acknowledged only once it is durably stored, and the loop keeps accepting meanwhile. If
the transaction fails, every handler waiting on it answers 500 and the sender retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.base import Connector
from syncd.clock import utcnow
from syncd.errors import WebhookRejected
from syncd.logs import event, get_logger
from syncd.runtime.dirty import ChangeEvent, record_changes
from syncd.runtime.metrics import Metrics
from syncd.wix.webhooks import MAX_BODY_BYTES, load_public_key, verify

log = get_logger(__name__)
WIX = "wix"
MAX_BATCH = 500  # events per transaction: well under SQLite's and PostgreSQL's bind limits


class InboxWriter:
    """Group commit for webhook events: whatever arrived while the last transaction ran is
    kept in the next one, so the store costs one transaction per batch, not per event.

    No event waits for a timer: a lone event is written at once. The transactions run in a
    worker thread, one at a time (inline where the store is one shared connection, an
    in-memory SQLite, which threads must not share)."""

    def __init__(self, engine: Engine, *, max_batch: int = MAX_BATCH) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._waiting: list[tuple[ChangeEvent, asyncio.Future[str]]] = []
        self._writing: asyncio.Task[None] | None = None
        self._inline = isinstance(engine.pool, StaticPool)

    async def record(self, changes: Sequence[ChangeEvent]) -> list[str]:
        """Keep `changes` (with whatever else is waiting); their outcomes once committed
        (see `record_changes`). Raises what the commit raised: nothing is acknowledged
        that is not stored."""
        if not changes:
            return []
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in changes]
        self._waiting.extend(zip(changes, futures, strict=True))
        if self._writing is None or self._writing.done():
            self._writing = loop.create_task(self._write())
        results = await asyncio.gather(*futures, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [str(result) for result in results]

    async def _write(self) -> None:
        while self._waiting:
            batch = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
            try:
                outcomes = await self._commit([change for change, _ in batch])
            except Exception as error:
                event(
                    log,
                    "inbox.commit_failed",
                    level=logging.WARNING,
                    events=len(batch),
                    error=_first_line(error),
                )
                _settle(batch, error)
            except BaseException:  # cancelled mid-commit (shutdown): each handler answers 500
                _settle(batch, RuntimeError("the inbox writer stopped"))
                raise
            else:
                _settle(batch, outcomes)

    async def _commit(self, changes: list[ChangeEvent]) -> list[str]:
        if self._inline:
            return record_changes(self.engine, changes, now=utcnow())
        return await asyncio.to_thread(record_changes, self.engine, changes, now=utcnow())


def _settle(
    batch: list[tuple[ChangeEvent, asyncio.Future[str]]], result: list[str] | Exception
) -> None:
    """Wake each waiting handler with its event's outcome, or with the commit's error."""
    for index, (_, future) in enumerate(batch):
        if future.done():  # its handler went away
            continue
        if isinstance(result, Exception):
            future.set_exception(result)
        else:
            future.set_result(result[index])


@dataclass
class Intake:
    engine: Engine
    connectors: Mapping[str, Connector]
    metrics: Metrics
    wake: asyncio.Event
    wix_public_key: str | None
    on_program_event: Callable[[], None] = lambda: None
    inbox: InboxWriter = field(init=False)
    _key: tuple[str, RSAPublicKey] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.inbox = InboxWriter(self.engine)

    def routes(self) -> list[Route]:
        return [
            Route("/webhooks/wix", self.wix, methods=["POST"]),
            Route("/webhooks/{connector}", self.connector, methods=["POST"]),
        ]

    async def wix(self, request: Request) -> Response:
        raw = await _body(request)
        if isinstance(raw, Response):
            return self._refused(WIX, raw)
        key = self._public_key()
        if key is None:
            return self._refused(WIX, _text(401, "wix.webhook_public_key is not configured"))
        try:
            verified = verify(raw, key, now=utcnow())
        except WebhookRejected as error:
            event(log, "webhook.rejected", source=WIX, reason=error.reason)
            return self._refused(WIX, _text(401, "not a verifiable Wix webhook"))
        if verified.event_type.startswith("wix.loyalty.v1.program"):
            self.on_program_event()
        change = ChangeEvent(
            WIX,
            verified.event_id,
            verified.event_type,
            wix_account_id=verified.account_id,
            balance=verified.balance,
        )
        return await self._store([change])

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
        changes = [
            ChangeEvent(
                name,
                verified.event_id,
                verified.event_type,
                connector=name,
                external_id=verified.account_id,
                merged_ids=tuple(verified.merged_ids),
                balance=verified.balance,
                own_write=verified.own_write,
            )
            for verified in events
        ]
        return await self._store(changes)

    def _public_key(self) -> RSAPublicKey | None:
        """The configured key, parsed once (and again only if the configuration changes)."""
        text = self.wix_public_key
        if text is None:
            return None
        if self._key is None or self._key[0] != text:
            self._key = (text, load_public_key(text))
        return self._key[1]

    async def _store(self, changes: list[ChangeEvent]) -> Response:
        """Keep the events once and mark their links dirty (one transaction), then answer:
        200 once stored, 500 (send again) if the store failed; wake the workers unless every
        event was a repeat or an echo (stored, but its link has nothing new to carry)."""
        try:
            outcomes = await self.inbox.record(changes)
        except Exception:
            return _text(500, "the event could not be stored: send it again")
        for change, outcome in zip(changes, outcomes, strict=True):
            if outcome == "duplicate":
                self.metrics.inc("syncd_webhooks_duplicate_total", source=change.source)
            else:
                self.metrics.inc("syncd_webhooks_received_total", source=change.source)
        if any(outcome in ("linked", "unlinked") for outcome in outcomes):
            self.wake.set()  # a linked account to sync, or a new one for the matcher
        return JSONResponse({"ok": True})

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


def _first_line(error: BaseException) -> str:
    """The error's first line (a database error's SQL and parameters follow it)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__
