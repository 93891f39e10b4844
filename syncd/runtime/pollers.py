"""Polling, the safety net for lost webhooks: Wix's ledger and each connector's change feed.

Each poll marks the changed accounts' links dirty and moves its cursor in the same
transaction, so a cursor never runs ahead of what was recorded; windows overlap and the
marking is idempotent, so an overlap costs nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from connectors.base import Connector
from syncd.clock import utcnow
from syncd.engine.outbox import TAG_PREFIX
from syncd.runtime.dirty import record_change
from syncd.runtime.metrics import Metrics
from syncd.store.db import session_scope, upsert
from syncd.store.models import Cursor, InboxEvent
from syncd.wix.client import WixClient

WIX_CURSOR = "wix.transactions"
OVERLAP = timedelta(seconds=60)


def read_cursor(engine: Engine, name: str) -> str | None:
    with session_scope(engine) as session:
        row = session.get(Cursor, name)
        return row.value if row else None


def write_cursor(engine: Engine, name: str, value: str) -> None:
    with session_scope(engine) as session:
        upsert(session, Cursor, [{"name": name, "value": value, "updated_at": utcnow()}])


async def start_cursors(engine: Engine, connector: Connector) -> None:
    """Before a backfill reads anything: start the polls here, unless they have started.

    Whatever changes while (or after) the backfill reads is then polled by the daemon, however
    much later it starts; a cursor that exists already (a daemon polled before) is kept."""
    if read_cursor(engine, WIX_CURSOR) is None:
        write_cursor(engine, WIX_CURSOR, utcnow().isoformat())
    name = f"connector:{connector.name}"
    if connector.capabilities.change_feed and read_cursor(engine, name) is None:
        write_cursor(engine, name, (await connector.changes_since(None)).cursor)


async def poll_wix(engine: Engine, wix: WixClient, metrics: Metrics) -> int:
    """Mark dirty every account with a ledger entry since the watermark (minus an overlap)
    that syncd did not write itself; returns how many entries were new to the poll."""
    stored = read_cursor(engine, WIX_CURSOR)
    if stored is None:  # no backfill ran (it starts the cursors): from now on
        write_cursor(engine, WIX_CURSOR, utcnow().isoformat())
        return 0
    watermark = datetime.fromisoformat(stored)
    since = watermark - OVERLAP
    newest = watermark
    found = 0
    window = {"createdDate": {"$gt": since.isoformat().replace("+00:00", "Z")}}
    fresh = []
    async for entry in wix.iter_transactions(filter=window):
        if entry.created_date and entry.created_date > newest:
            newest = entry.created_date
        if not (entry.description or "").startswith(TAG_PREFIX):  # not our own write
            fresh.append(entry)
    seen = _seen(engine, "wix.poll", [e.id for e in fresh])
    for entry in fresh:
        if entry.id in seen:
            continue
        outcome = record_change(
            engine,
            source="wix.poll",
            event_id=entry.id,
            event_type=entry.type,
            now=utcnow(),
            wix_account_id=entry.account_id,
        )
        found += outcome != "duplicate"
    if newest > watermark:
        write_cursor(engine, WIX_CURSOR, newest.isoformat())
    metrics.inc("syncd_polled_changes_total", found, source="wix")
    return found


async def poll_connector(engine: Engine, connector: Connector, metrics: Metrics) -> int:
    """Mark dirty the links of every account the connector reports changed since its cursor."""
    if not connector.capabilities.change_feed:
        return 0
    name = f"connector:{connector.name}"
    page = await connector.changes_since(read_cursor(engine, name))
    found = 0
    source = f"{connector.name}.poll"
    seen = _seen(engine, source, [c.event_id for c in page.changes])
    for change in page.changes:
        if change.event_id in seen:
            continue
        outcome = record_change(
            engine,
            source=source,
            event_id=change.event_id,
            event_type="change",
            now=utcnow(),
            connector=connector.name,
            external_id=change.account_id,
        )
        found += outcome != "duplicate"
    write_cursor(engine, name, page.cursor)
    metrics.inc("syncd_polled_changes_total", found, source=connector.name)
    return found


def _seen(engine: Engine, source: str, event_ids: list[str]) -> set[str]:
    """Which of these changes an earlier (overlapping) poll already recorded: one query."""
    if not event_ids:
        return set()
    with session_scope(engine) as session:
        rows = session.exec(
            select(InboxEvent.event_id).where(
                InboxEvent.source == source, col(InboxEvent.event_id).in_(event_ids)
            )
        ).all()
    return set(rows)
