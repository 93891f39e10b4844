"""Echo suppression at intake: the webhooks syncd's own writes cause are stored but mark
nothing, while a link a sync holds, a link never synced and a genuine change are marked as
before. Webhooks are the emulators' own, signed, delivered to the daemon's app in process."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col

from syncd.clock import utcnow
from syncd.runtime.dirty import ChangeEvent, claim, mark_dirty, record_changes, release
from syncd.store.db import session_scope
from syncd.store.models import Link
from tests.runtime.conftest import (
    CONNECTOR,
    Customer,
    Site,
    add_links,
    dirty_ids,
    inbox,
    link_row,
)


def balances(site: Site, customer: Customer) -> tuple[int, int]:
    remotes = site.remotes
    wix = next(a for a in remotes.wix_site.state.all_accounts() if a["id"] == customer.wix_id)
    return int(wix["points"]["balance"]), int(remotes.square.account(customer.square_id)["balance"])


async def in_step(site: Site, customer: Customer) -> None:
    """Sync the customer's link (bases set), then forget every webhook so far: only what the
    test does next reaches the daemon."""
    await site.daemon.appliers[CONNECTOR].sync(customer.link_id)
    site.remotes.wix_site.webhooks.reset()
    site.remotes.square.webhooks.reset()


async def post_square_events(site: Site) -> list[int]:
    """Post every queued Square event to the daemon at once (one group commit, or a few)."""
    square = site.remotes.square.webhooks
    bodies = [event.body for event in square.events]
    square.reset()
    answers = await asyncio.gather(
        *(site.post_square(body, square.signature_for(body)) for body in bodies)
    )
    return [answer.status_code for answer in answers]


async def post_wix_events(site: Site) -> list[int]:
    wix = site.remotes.wix_site.webhooks
    bodies = [event.body for event in wix.events]
    wix.reset()
    return [(await site.post_wix(body)).status_code for body in bodies]


@pytest.mark.anyio
async def test_the_echoes_of_syncds_writes_leave_the_link_clean(site: Site) -> None:
    """A Wix change carried to Square, and a till sale carried to Wix: the webhooks of
    syncd's two writes (Square's tagged adjustment and account update, Wix's points and
    account updates) are stored and counted, but the link stays clean."""
    anna = site.anna
    await in_step(site, anna)
    site.remotes.wix_site.activity(anna.wix_id, "earn", 10)
    site.remotes.square.activity(anna.square_id, "sale", 20)
    site.remotes.wix_site.webhooks.reset()  # the changes' own webhooks: marked and synced
    site.remotes.square.webhooks.reset()
    await site.daemon.appliers[CONNECTOR].sync(anna.link_id)
    assert balances(site, anna) == (130, 130)
    stored = len(inbox(site.remotes.engine))
    assert await post_square_events(site) == [200, 200]
    assert await post_wix_events(site) == [200, 200]
    assert dirty_ids(site.remotes.engine) == set()
    assert len(inbox(site.remotes.engine)) == stored + 4
    assert site.metric("syncd_webhooks_received_total", CONNECTOR) == 2
    assert site.metric("syncd_webhooks_received_total", "wix") == 2


@pytest.mark.anyio
async def test_a_sale_arriving_with_the_echo_is_marked_and_synced(site: Site) -> None:
    """A till sale made just after syncd's write to Square arrives in the same burst as that
    write's echo: the link is marked and the sale reaches Wix; the echo of that second write
    then leaves the link clean."""
    anna = site.anna
    await in_step(site, anna)
    site.remotes.wix_site.activity(anna.wix_id, "earn", 10)
    site.remotes.wix_site.webhooks.reset()
    await site.daemon.appliers[CONNECTOR].sync(anna.link_id)  # Square +10: its echo queued
    site.remotes.square.activity(anna.square_id, "sale", 20)  # right after: 130 at the till
    assert await post_square_events(site) == [200] * 4
    assert dirty_ids(site.remotes.engine) == {anna.link_id}
    await site.daemon.appliers[CONNECTOR].sync(anna.link_id)
    assert balances(site, anna) == (130, 130)
    release_all(site)
    assert await post_wix_events(site) == [200, 200]  # the echo of Wix +20
    assert dirty_ids(site.remotes.engine) == set()


def release_all(site: Site) -> None:
    """Clean the link as a worker's release after a sync would."""
    engine = site.remotes.engine
    owner = "test:1"
    for link_id in claim(engine, owner, now=utcnow(), limit=10, lease=timedelta(minutes=1)):
        release(engine, link_id, owner, claimed_at=utcnow(), synced=True)


@pytest.mark.anyio
async def test_a_leased_link_is_marked_by_an_echo(site: Site) -> None:
    """While a sync holds the link its bases are about to move: an event whose balance equals
    the base marks it as before (the link stays dirty at release). Once released and clean,
    an event with the same balance leaves it alone."""
    anna, engine = site.anna, site.remotes.engine
    await in_step(site, anna)
    mark_dirty(engine, now=utcnow(), wix_account_id=anna.wix_id)
    claimed_at = utcnow()
    assert claim(engine, "other:7", now=claimed_at, limit=1, lease=timedelta(minutes=5)) == [
        anna.link_id
    ]
    site.remotes.wix_site.recalculate()  # account_updated, balance unchanged (100 = base)
    assert await post_wix_events(site) == [200]
    release(engine, anna.link_id, "other:7", claimed_at=claimed_at, synced=True)
    assert dirty_ids(engine) == {anna.link_id}
    release_all(site)
    site.remotes.wix_site.recalculate()
    assert await post_wix_events(site) == [200]
    assert dirty_ids(engine) == set()


@pytest.mark.anyio
async def test_a_link_never_synced_is_marked(site: Site) -> None:
    """A link with no bases yet is marked by any event; beside it, a synced link whose
    event reports its base is not."""
    anna, bob = site.anna, site.remotes.customer(2)
    await in_step(site, bob)
    assert link_row(site.remotes.engine, anna.link_id).wix_base is None
    site.remotes.wix_site.recalculate()  # both accounts, balances unchanged
    assert await post_wix_events(site) == [200, 200]
    assert dirty_ids(site.remotes.engine) == {anna.link_id}


@pytest.mark.anyio
async def test_a_repeated_echo_is_counted_as_a_duplicate(site: Site) -> None:
    """An echo redelivered is a duplicate as before: counted once as received, once as a
    duplicate, stored once, and the link stays clean."""
    anna = site.anna
    await in_step(site, anna)
    site.remotes.wix_site.recalculate()
    body = site.remotes.wix_site.webhooks.events[-1].body
    assert (await site.post_wix(body)).status_code == 200
    stored = inbox(site.remotes.engine)
    assert (await site.post_wix(body)).status_code == 200
    assert inbox(site.remotes.engine) == stored
    assert site.metric("syncd_webhooks_received_total", "wix") == 1
    assert site.metric("syncd_webhooks_duplicate_total", "wix") == 1
    assert dirty_ids(site.remotes.engine) == set()


# -- the marking statement, on every store backend --------------------------------------------


def hinted(event_id: str, account: str, balance: int | None) -> ChangeEvent:
    return ChangeEvent(
        "wix", event_id, "wix.loyalty.v1.account_updated", wix_account_id=account, balance=balance
    )


def synced_links(store: Engine, count: int, base: int) -> list[int]:
    """`count` clean links whose bases are both `base` (as after a sync)."""
    ids = add_links(store, count)
    with session_scope(store) as session:
        session.execute(update(Link).values(wix_base=base, ext_base=base))
    return ids


def test_one_batch_spares_only_accounts_whose_every_event_reports_the_base(store: Engine) -> None:
    """In one group commit, an echo (balance = base) beside a sale (another balance) on the
    same account marks it; an account with only echoes, or only syncd's own tagged write,
    is left clean; each event's outcome says which."""
    first, _second, _third = synced_links(store, 3, base=100)
    own = ChangeEvent(
        CONNECTOR,
        "s1",
        "loyalty.event.created",
        connector=CONNECTOR,
        external_id="e2",
        own_write=True,
    )
    outcomes = record_changes(
        store,
        [hinted("a", "w0", 100), hinted("b", "w0", 130), hinted("c", "w1", 100), own],
        now=utcnow(),
    )
    assert outcomes == ["linked", "linked", "echo", "echo"]
    assert dirty_ids(store) == {first}


def test_a_held_lease_marks_and_an_expired_one_does_not(store: Engine) -> None:
    """A link whose lease is held is marked by an event reporting its base; one whose lease
    ran out (its worker died) is not; a link with no bases is marked."""
    held, expired, never = synced_links(store, 3, base=100)
    now = utcnow()
    leases = {held: now + timedelta(minutes=1), expired: now - timedelta(seconds=1)}
    with session_scope(store) as session:
        for link_id, until in leases.items():
            session.execute(
                update(Link)
                .where(col(Link.id) == link_id)
                .values(lease_owner="other:7", lease_until=until)
            )
        session.execute(update(Link).where(col(Link.id) == never).values(wix_base=None))
    outcomes = record_changes(
        store,
        [hinted("a", "w0", 100), hinted("b", "w1", 100), hinted("c", "w2", 100)],
        now=now,
    )
    assert outcomes == ["linked", "echo", "linked"]
    assert dirty_ids(store) == {held, never}
