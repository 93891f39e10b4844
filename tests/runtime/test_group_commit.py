"""Intake's group commit: many events, one transaction, the same outcome each event would get
alone; a failed commit acknowledges none of its events, and stores none of them."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from syncd.clock import utcnow
from syncd.runtime.dirty import ChangeEvent, record_changes
from syncd.runtime.intake import InboxWriter
from syncd.store.db import make_engine, upgrade
from tests.runtime.conftest import (
    CONNECTOR,
    Site,
    StoreFault,
    add_links,
    dirty_ids,
    inbox,
    link_row,
)


def wix(event_id: str, account: str | None = "w0") -> ChangeEvent:
    return ChangeEvent("wix", event_id, "wix.loyalty.v1.account_updated", wix_account_id=account)


def shop(event_id: str, account: str, merged: tuple[str, ...] = ()) -> ChangeEvent:
    return ChangeEvent(
        CONNECTOR,
        event_id,
        "loyalty.account.updated",
        connector=CONNECTOR,
        external_id=account,
        merged_ids=merged,
    )


def commits(engine: Engine) -> list[int]:
    """A list that grows by one at every commit on `engine`."""
    seen: list[int] = []
    event.listen(engine, "commit", lambda connection: seen.append(1))
    return seen


# -- record_changes ---------------------------------------------------------------------------


def test_a_batch_gives_each_event_its_own_outcome(store: Engine) -> None:
    """Linked, unlinked, no account, and a repeat inside the batch: each event gets what
    `record_change` would give it alone; the repeat is a duplicate and stored once."""
    first, second = add_links(store, 2)
    outcomes = record_changes(
        store,
        [wix("a"), wix("b", "nobody"), wix("c", None), wix("a"), shop("d", "e1")],
        now=utcnow(),
    )
    assert outcomes == ["linked", "unlinked", "unlinked", "duplicate", "linked"]
    assert sorted(e for _, e, _ in inbox(store)) == ["a", "b", "c", "d"]
    assert dirty_ids(store) == {first, second}


def test_a_batch_of_redeliveries_does_nothing(store: Engine) -> None:
    """Events stored by an earlier batch are duplicates in a later one, and mark nothing."""
    add_links(store, 1)
    record_changes(store, [wix("a")], now=utcnow())
    with store.begin() as connection:
        connection.exec_driver_sql("UPDATE links SET dirty = false, dirty_since = NULL")
    assert record_changes(store, [wix("a"), wix("a")], now=utcnow()) == ["duplicate"] * 2
    assert dirty_ids(store) == set()


def test_merges_inside_a_batch_keep_their_order(store: Engine) -> None:
    """An event before a merge marks the merged account's link; the merge moves that link to
    the survivor; an event after it for the merged-away account finds no link."""
    [merged] = add_links(store, 1)
    outcomes = record_changes(
        store,
        [shop("before", "e0"), shop("merge", "survivor", ("e0",)), shop("after", "e0")],
        now=utcnow(),
    )
    assert outcomes == ["linked", "linked", "unlinked"]
    assert link_row(store, merged).external_id == "survivor"
    assert dirty_ids(store) == {merged}


def test_a_failed_batch_keeps_nothing(store: Engine) -> None:
    """The dirty marks fail: no event of the batch stays in the inbox, no link is dirty."""
    add_links(store, 2)
    StoreFault(store, "UPDATE links")
    with pytest.raises(Exception, match="injected"):
        record_changes(store, [wix("a"), shop("b", "e1")], now=utcnow())
    assert inbox(store) == []
    assert dirty_ids(store) == set()


# -- InboxWriter ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_concurrent_events_share_one_transaction(store: Engine) -> None:
    """Fifty events handed in together are committed in at most two transactions (the first
    may leave alone), each answered with its own outcome."""
    add_links(store, 1)
    writer = InboxWriter(store)
    seen = commits(store)
    events = [wix(f"e{i}", "w0" if i % 2 else "nobody") for i in range(50)]
    answers = await asyncio.gather(*(writer.record([e]) for e in events))
    assert [a for [a] in answers] == ["unlinked", "linked"] * 25
    assert 1 <= len(seen) <= 2
    assert len(inbox(store)) == 50


@pytest.mark.anyio
async def test_a_failed_commit_fails_every_waiting_event(store: Engine) -> None:
    """When the batch's commit fails, every event in it is answered with the error (nothing
    acknowledged, nothing stored); sent again, they are kept."""
    add_links(store, 1)
    writer = InboxWriter(store)
    StoreFault(store, "INSERT INTO inbox_events")
    events = [wix(f"e{i}") for i in range(10)]
    answers = await asyncio.gather(*(writer.record([e]) for e in events), return_exceptions=True)
    assert all(isinstance(a, Exception) for a in answers)
    assert inbox(store) == []
    again = await asyncio.gather(*(writer.record([e]) for e in events))
    assert [a for [a] in again] == ["linked"] * 10
    assert len(inbox(store)) == 10


@pytest.mark.anyio
async def test_an_in_memory_store_is_written_inline() -> None:
    """A store that is one shared connection (in-memory SQLite) is written on the loop, not
    from a thread, and still keeps each event once."""
    engine = make_engine("sqlite://")
    upgrade(engine)
    writer = InboxWriter(engine)
    assert await writer.record([wix("a", None), wix("a", None)]) == ["unlinked", "duplicate"]
    engine.dispose()


# -- through the webhook endpoint -------------------------------------------------------------


@pytest.mark.anyio
async def test_webhooks_of_a_failed_batch_are_all_500_then_kept_on_redelivery(site: Site) -> None:
    """Webhooks whose commit fails (together or alone) are every one answered 500, so Wix sends
    them again, and none is stored; the redeliveries are 200, stored once each, and mark the
    link."""
    bodies = [site.wix_event().body for _ in range(5)]
    fault = StoreFault(site.remotes.engine, "INSERT INTO inbox_events", times=5)
    first = await asyncio.gather(*(site.post_wix(b) for b in bodies))
    fault.left = 0  # the database is back
    assert [r.status_code for r in first] == [500] * 5
    assert inbox(site.remotes.engine) == []
    assert dirty_ids(site.remotes.engine) == set()
    again = await asyncio.gather(*(site.post_wix(b) for b in bodies))
    assert [r.status_code for r in again] == [200] * 5
    assert len(inbox(site.remotes.engine)) == 5
    assert dirty_ids(site.remotes.engine) == {site.anna.link_id}
    assert site.metric("syncd_webhooks_received_total", "wix") == 5


@pytest.mark.anyio
async def test_the_same_webhook_twice_in_one_batch_is_acknowledged_twice(site: Site) -> None:
    """A redelivery racing its original into the same batch: both are 200, one is stored and
    counted received, the other counted a duplicate."""
    body = site.wix_event().body
    answers = await asyncio.gather(site.post_wix(body), site.post_wix(body))
    assert [r.status_code for r in answers] == [200, 200]
    assert len(inbox(site.remotes.engine)) == 1
    assert site.metric("syncd_webhooks_received_total", "wix") == 1
    assert site.metric("syncd_webhooks_duplicate_total", "wix") == 1
