"""Absolute writes made exactly-once, read-back, and the change feed, against the emulator."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from connectors.base import ReadBack
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.emulator import HubSpotEmulator
from connectors.hubspot.mapping import to_ms
from syncd.budget import TokenBucket
from syncd.clock import utcnow
from syncd.errors import SkipError
from tests.connectors.hubspot.conftest import OPERATION, POINTS, hubspot_settings
from tests.fakes import FakeTime, ManualClock

pytestmark = pytest.mark.anyio
PATCH = "PATCH /crm/v3/objects/contacts/{contact_id}"


def patches(emulator: HubSpotEmulator) -> int:
    return int(emulator.stats.dump()["requests"].get(PATCH, 0))


async def test_apply_delta_sets_points_and_operation_together(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator
) -> None:
    """One PATCH sets points = current + delta and the operation property to `<key>:<value>`;
    both history entries carry the same moment; the value is the write's remote id."""
    [contact] = emulator.seed_contacts([{"email": "a@example.com", "balance": 100}])
    result = await hubspot.apply_delta(contact["id"], 25, key="op-1", reason="syncd:op-1")
    assert emulator.points(contact["id"]) == 125 and patches(emulator) == 1
    [points, *_] = emulator.history(contact["id"], POINTS)
    [operation] = emulator.history(contact["id"], OPERATION)
    assert operation["value"] == "op-1:125" == result.remote_id
    assert points["timestamp"] == operation["timestamp"]
    with pytest.raises(ValueError):
        await hubspot.apply_delta(contact["id"], 0, key="op-0", reason="syncd:op-0")


async def test_replayed_keys_apply_once(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator, clock: ManualClock
) -> None:
    """A key already in the operation property's history is not written again, even after
    later writes under other keys; the replay answers the first write's remote id."""
    [contact] = emulator.seed_contacts([{"email": "a@example.com", "balance": 10}])
    first = await hubspot.apply_delta(contact["id"], 5, key="op-a", reason="syncd:op-a")
    clock.advance(1)
    await hubspot.apply_delta(contact["id"], -3, key="op-b", reason="syncd:op-b")
    for key in ("op-a", "op-b", "op-a"):
        again = await hubspot.apply_delta(contact["id"], 5, key=key, reason=f"syncd:{key}")
        assert again.remote_id == ("op-a:15" if key == "op-a" else "op-b:12")
    assert first.remote_id == "op-a:15"
    assert emulator.points(contact["id"]) == 12 and patches(emulator) == 2


async def test_operator_edit_between_writes_is_kept_and_reported(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator, clock: ManualClock
) -> None:
    """An operator's edit after syncd's write shows as a balance other than syncd set; the next
    write adds to it instead of overwriting it; the feed reports the contact even though its
    latest value is syncd's."""
    [contact] = emulator.seed_contacts([{"email": "a@example.com", "balance": 10}])
    cursor = str(to_ms(clock()))
    clock.advance(1)
    await hubspot.apply_delta(contact["id"], 5, key="op-1", reason="syncd:op-1")
    clock.advance(1)
    emulator.set_points(contact["id"], 100)  # in HubSpot's UI
    assert (await hubspot.get_account(contact["id"])).balance == 100  # not the 15 we set
    clock.advance(1)
    await hubspot.apply_delta(contact["id"], 1, key="op-2", reason="syncd:op-2")
    assert emulator.points(contact["id"]) == 101
    page = await hubspot.changes_since(cursor)
    assert page.account_ids == [contact["id"]]


async def test_a_balance_below_zero_is_refused(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator
) -> None:
    """current + delta < 0: SkipError NEGATIVE_BALANCE, nothing written."""
    [contact] = emulator.seed_contacts([{"email": "a@example.com", "balance": 10}])
    with pytest.raises(SkipError) as refused:
        await hubspot.apply_delta(contact["id"], -11, key="op-n", reason="syncd:op-n")
    assert refused.value.code == "NEGATIVE_BALANCE" and refused.value.account == contact["id"]
    assert emulator.points(contact["id"]) == 10 and patches(emulator) == 0


async def test_read_back_finds_the_write_by_its_key(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator, clock: ManualClock
) -> None:
    """APPLIED with apply_delta's remote id; ABSENT for a key never written, for "op-1" when
    "op-10" was written, on another contact, and for a write older than `since` less 5 min."""
    one, other = (c["id"] for c in emulator.seed_contacts(2))
    since = clock() - timedelta(seconds=1)
    made = await hubspot.apply_delta(one, 3, key="op-10", reason="syncd:op-10")
    found = await hubspot.read_back(one, key="op-10", since=since)
    assert found.outcome is ReadBack.APPLIED and found.remote_id == made.remote_id
    for account, key in ((one, "op-1"), (one, "op-2"), (other, "op-10")):
        missing = await hubspot.read_back(account, key=key, since=since)
        assert missing.outcome is ReadBack.ABSENT and missing.remote_id is None
    clock.advance(600)
    late = await hubspot.read_back(one, key="op-10", since=clock())
    assert late.outcome is ReadBack.ABSENT


async def test_changes_since_none_starts_now(hubspot: HubSpotConnector) -> None:
    """None answers no changes and our clock's now in epoch ms; a bad cursor is ValueError."""
    before = to_ms(utcnow())
    start = await hubspot.changes_since(None)
    assert start.changes == [] and before <= int(start.cursor) <= to_ms(utcnow())
    with pytest.raises(ValueError):
        await hubspot.changes_since("2025-01-01T00:00:00Z")


async def test_changes_since_keeps_theirs_and_leaves_out_ours(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator, clock: ManualClock
) -> None:
    """Operator edits and new contacts after the cursor are listed oldest first; contacts
    whose latest change is syncd's write are not; the cursor moves to the newest change and
    a poll from it lists the overlap again with the same event ids."""
    seeded = [c["id"] for c in emulator.seed_contacts(5)]
    clock.advance(120)
    cursor = str(to_ms(clock()))
    edited, ours, both = seeded[2], seeded[0], seeded[4]
    clock.advance(1)
    emulator.add_points(edited, 10)
    clock.advance(1)
    await hubspot.apply_delta(ours, 4, key="op-ours", reason="syncd:op-ours")
    clock.advance(1)
    created = await hubspot.create_account(email="n@example.com", phone=None, name=None, key="c")
    clock.advance(1)
    await hubspot.apply_delta(both, 1, key="op-both-1", reason="syncd:op-both-1")
    clock.advance(1)
    emulator.add_points(both, 7)  # the operator's edit: the feed lists the contact
    page = await hubspot.changes_since(cursor)
    assert page.account_ids == [edited, created.id, both]
    assert int(page.cursor) == to_ms(clock())
    assert page.changes[0].event_id == f"{edited}@{emulator.contact(edited)['updatedAt']}"
    again = await hubspot.changes_since(page.cursor)
    assert again.changes == page.changes and again.cursor == page.cursor
    clock.advance(120)
    await hubspot.apply_delta(both, 1, key="op-both-2", reason="syncd:op-both-2")
    later = await hubspot.changes_since(page.cursor)
    assert later.account_ids == [edited, created.id, both]  # all within the overlap still
    clock.advance(1)
    await hubspot.apply_delta(both, 1, key="op-both-3", reason="syncd:op-both-3")
    assert (await hubspot.changes_since(later.cursor)).account_ids == []


async def test_changes_since_waits_for_search_to_catch_up(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator, clock: ManualClock
) -> None:
    """An edit search does not see yet is not listed and the cursor stays; once indexed, a
    poll from the same cursor lists it."""
    emulator.knobs.search_lag_seconds = 20
    [contact] = emulator.seed_contacts(1)
    clock.advance(120)
    cursor = str(to_ms(clock()))
    emulator.add_points(contact["id"], 3)
    clock.advance(5)
    first = await hubspot.changes_since(cursor)
    assert first.changes == [] and first.cursor == cursor
    clock.advance(20)
    assert (await hubspot.changes_since(first.cursor)).account_ids == [contact["id"]]


async def test_changes_since_goes_past_the_search_result_stop(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator, clock: ManualClock
) -> None:
    """A query that reaches search's result stop starts again from the last date seen:
    every change is listed once, in order, across several queries."""
    emulator.knobs.search_max_results = 5
    hubspot.search_max_results = 5
    seeded = [c["id"] for c in emulator.seed_contacts(12)]
    clock.advance(120)
    cursor = str(to_ms(clock()))
    for index, contact_id in enumerate(seeded):
        clock.advance(index % 2)  # pairs share a millisecond, across the query boundaries
        emulator.add_points(contact_id, 1)
    page = await hubspot.changes_since(cursor)
    assert page.account_ids == seeded
    assert len(page.changes) == len({c.event_id for c in page.changes}) == 12
    searches = emulator.stats.dump()["requests"]["POST /crm/v3/objects/contacts/search"]
    assert searches >= 3
    assert emulator.stats.dump()["statuses"].get("400") is None


class EditBeforePatch:
    """The emulator's app, with an operator's edit landing after syncd read the contact and
    just before its PATCH is handled: the race HubSpot's lack of compare-and-set leaves."""

    def __init__(self, emulator: HubSpotEmulator, clock: ManualClock, points: int) -> None:
        self.emulator, self.clock, self.points = emulator, clock, points
        self.armed = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "PATCH" and self.armed:
            self.armed = False
            contact_id = str(scope["path"]).rsplit("/", 1)[-1]
            self.clock.advance(1)
            self.emulator.add_points(contact_id, self.points)  # in HubSpot's UI
            self.clock.advance(1)
        await self.emulator.app(scope, receive, send)


async def test_an_edit_overwritten_by_a_write_is_put_back(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator, clock: ManualClock, fake_time: FakeTime
) -> None:
    """An operator adds 7 between syncd's read and its write of +5: the write overwrites it,
    syncd sees that in the history and puts the 7 back on top (100 + 5 + 7), and the feed
    reports the contact, so the 7 reaches Wix like any edit."""
    [contact] = emulator.seed_contacts([{"email": "race@example.com", "balance": 100}])
    clock.advance(120)
    cursor = str(to_ms(clock()))
    racing = HubSpotConnector(
        hubspot_settings("http://hubspot.test"),
        transport=httpx.ASGITransport(EditBeforePatch(emulator, clock, 7)),
        budget=TokenBucket(100_000, clock=fake_time.clock, sleep=fake_time.sleep),
        search_budget=TokenBucket(100_000, clock=fake_time.clock, sleep=fake_time.sleep),
    )
    async with racing:
        made = await racing.apply_delta(contact["id"], 5, key="op-race", reason="syncd:op-race")
    assert made.remote_id == "op-race:105"
    assert emulator.points(contact["id"]) == 112
    assert (await hubspot.changes_since(cursor)).account_ids == [contact["id"]]
