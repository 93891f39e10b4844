"""Polling, the safety net for lost webhooks: Wix's ledger and Square's change feed, read
through syncd's clients from the in-process emulators."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from connectors.square.mapping import format_time
from syncd.clock import utcnow
from syncd.runtime.dirty import claim, release
from syncd.runtime.metrics import Metrics
from syncd.runtime.pollers import WIX_CURSOR, poll_connector, poll_wix, read_cursor
from tests.runtime.conftest import (
    CONNECTOR,
    Clients,
    Remotes,
    StoreDown,
    StoreFault,
    dirty_ids,
    inbox,
)

SQUARE_CURSOR = f"connector:{CONNECTOR}"


def clean(remotes: Remotes) -> None:
    """Sync every dirty link (as a worker would) so the next marks can be seen."""
    now = utcnow()
    for link_id in claim(remotes.engine, "test:1", now=now, limit=100, lease=timedelta(10)):
        release(remotes.engine, link_id, "test:1", claimed_at=now, synced=True)
    assert not dirty_ids(remotes.engine)


def soon(seconds: float) -> datetime:
    """A moment just ahead of now, millisecond-exact as both APIs print times."""
    moment = utcnow() + timedelta(seconds=seconds)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# -- Wix ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_first_wix_poll_only_sets_the_watermark(remotes: Remotes, clients: Clients) -> None:
    """The first poll reads nothing (the backfill is the reconcile's job): it stores now as the
    watermark, marks nothing and calls no API, even with fresh ledger entries about."""
    anna = remotes.customer(1)
    remotes.wix_site.activity(anna.wix_id, "earn", 10)
    before = utcnow()
    calls = clients.wix.calls
    assert await poll_wix(remotes.engine, clients.wix, Metrics()) == 0
    stored = read_cursor(remotes.engine, WIX_CURSOR)
    assert stored is not None
    assert before <= datetime.fromisoformat(stored) <= utcnow()
    assert clients.wix.calls == calls
    assert not dirty_ids(remotes.engine)
    assert inbox(remotes.engine) == []


@pytest.mark.anyio
async def test_wix_poll_marks_accounts_with_new_entries(remotes: Remotes, clients: Clients) -> None:
    """Entries after the watermark mark their accounts' links dirty; syncd's own `syncd:`
    entries and entries older than the window mark nothing; the count is metered."""
    anna, ben, cleo = (remotes.customer(n) for n in (1, 2, 3))
    metrics = Metrics()
    await poll_wix(remotes.engine, clients.wix, metrics)
    remotes.wix_site.activity(anna.wix_id, "redeem", 30)
    remotes.wix_site.activity(anna.wix_id, "earn", 5)
    remotes.wix_site.activity(ben.wix_id, "adjust", 7, description="syncd:op-1 from shop")
    assert await poll_wix(remotes.engine, clients.wix, metrics) == 2
    assert dirty_ids(remotes.engine) == {anna.link_id}
    assert cleo.link_id not in dirty_ids(remotes.engine)  # its seed entry is an hour old
    assert metrics.value("syncd_polled_changes_total", source="wix") == 2


@pytest.mark.anyio
async def test_overlapping_wix_polls_mark_each_entry_once(
    remotes: Remotes, clients: Clients
) -> None:
    """An entry read again by an overlapping window is not marked again; a new one is."""
    anna = remotes.customer(1)
    await poll_wix(remotes.engine, clients.wix, Metrics())
    remotes.wix_site.activity(anna.wix_id, "earn", 10)
    assert await poll_wix(remotes.engine, clients.wix, Metrics()) == 1
    clean(remotes)
    assert await poll_wix(remotes.engine, clients.wix, Metrics()) == 0
    assert not dirty_ids(remotes.engine)
    remotes.wix_site.activity(anna.wix_id, "earn", 3)
    assert await poll_wix(remotes.engine, clients.wix, Metrics()) == 1
    assert dirty_ids(remotes.engine) == {anna.link_id}


@pytest.mark.anyio
async def test_wix_cursor_moves_to_the_newest_entry(remotes: Remotes, clients: Clients) -> None:
    """The watermark becomes the newest entry's time (syncd's own entries included: they were
    read) and never moves back when a poll finds nothing newer."""
    anna, ben = remotes.customer(1), remotes.customer(2)
    await poll_wix(remotes.engine, clients.wix, Metrics())
    remotes.clock.at(soon(1))
    remotes.wix_site.activity(anna.wix_id, "earn", 10)
    newest = soon(2)
    remotes.clock.at(newest)
    remotes.wix_site.activity(ben.wix_id, "adjust", 4, description="syncd:op-2 from shop")
    await poll_wix(remotes.engine, clients.wix, Metrics())
    assert read_cursor(remotes.engine, WIX_CURSOR) == newest.isoformat()
    await poll_wix(remotes.engine, clients.wix, Metrics())
    assert read_cursor(remotes.engine, WIX_CURSOR) == newest.isoformat()


@pytest.mark.anyio
async def test_wix_poll_interrupted_before_marking_marks_on_the_next_poll(
    remotes: Remotes, clients: Clients
) -> None:
    """If marking the link fails mid-poll (database gone, process killed), the next poll still
    marks it: an entry is recorded as seen only together with its link's mark."""
    anna = remotes.customer(1)
    await poll_wix(remotes.engine, clients.wix, Metrics())
    remotes.wix_site.activity(anna.wix_id, "earn", 10)
    StoreFault(remotes.engine, "UPDATE links")
    with pytest.raises(StoreDown):
        await poll_wix(remotes.engine, clients.wix, Metrics())
    await poll_wix(remotes.engine, clients.wix, Metrics())
    assert dirty_ids(remotes.engine) == {anna.link_id}


# -- Square ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_first_connector_poll_only_sets_the_cursor(
    remotes: Remotes, clients: Clients
) -> None:
    """The first poll of Square's feed starts it at now and marks nothing."""
    dora = remotes.customer(1)
    remotes.square.activity(dora.square_id, "sale", 20)
    before = utcnow().replace(microsecond=0)
    assert await poll_connector(remotes.engine, clients.connector, Metrics()) == 0
    stored = read_cursor(remotes.engine, SQUARE_CURSOR)
    assert stored is not None
    assert before <= datetime.fromisoformat(stored.replace("Z", "+00:00")) <= utcnow()
    assert not dirty_ids(remotes.engine)


@pytest.mark.anyio
async def test_connector_poll_marks_accounts_with_till_activity(
    remotes: Remotes, clients: Clients
) -> None:
    """Till sales and redemptions mark their accounts' links; syncd's own tagged adjustment
    does not; each event is marked once across overlapping polls."""
    dora, eli, fay = (remotes.customer(n) for n in (1, 2, 3))
    metrics = Metrics()
    await poll_connector(remotes.engine, clients.connector, metrics)
    remotes.square.activity(dora.square_id, "sale", 20)
    remotes.square.activity(fay.square_id, "redeem", 10)  # two events: CREATE_ and REDEEM_REWARD
    await clients.connector.apply_delta(eli.square_id, 5, key="op-3", reason="from wix")
    assert await poll_connector(remotes.engine, clients.connector, metrics) == 3
    assert dirty_ids(remotes.engine) == {dora.link_id, fay.link_id}
    assert metrics.value("syncd_polled_changes_total", source=CONNECTOR) == 3
    clean(remotes)
    assert await poll_connector(remotes.engine, clients.connector, metrics) == 0
    assert not dirty_ids(remotes.engine)
    remotes.square.activity(eli.square_id, "sale", 1)
    assert await poll_connector(remotes.engine, clients.connector, metrics) == 1
    assert dirty_ids(remotes.engine) == {eli.link_id}


@pytest.mark.anyio
async def test_connector_cursor_moves_to_the_newest_event(
    remotes: Remotes, clients: Clients
) -> None:
    """Square's cursor becomes the newest event's time and stays there when nothing is new."""
    dora, eli = remotes.customer(1), remotes.customer(2)
    await poll_connector(remotes.engine, clients.connector, Metrics())
    remotes.clock.at(soon(1).replace(microsecond=0))
    remotes.square.activity(dora.square_id, "sale", 20)
    newest = soon(3).replace(microsecond=0)
    remotes.clock.at(newest)
    remotes.square.activity(eli.square_id, "sale", 4)
    await poll_connector(remotes.engine, clients.connector, Metrics())
    assert read_cursor(remotes.engine, SQUARE_CURSOR) == format_time(newest)
    await poll_connector(remotes.engine, clients.connector, Metrics())
    assert read_cursor(remotes.engine, SQUARE_CURSOR) == format_time(newest)


@pytest.mark.anyio
async def test_connector_poll_interrupted_before_marking_marks_on_the_next_poll(
    remotes: Remotes, clients: Clients
) -> None:
    """If marking fails mid-poll, the next poll still marks the link (nothing is lost)."""
    dora = remotes.customer(1)
    await poll_connector(remotes.engine, clients.connector, Metrics())
    remotes.square.activity(dora.square_id, "sale", 20)
    StoreFault(remotes.engine, "UPDATE links")
    with pytest.raises(StoreDown):
        await poll_connector(remotes.engine, clients.connector, Metrics())
    await poll_connector(remotes.engine, clients.connector, Metrics())
    assert dirty_ids(remotes.engine) == {dora.link_id}
