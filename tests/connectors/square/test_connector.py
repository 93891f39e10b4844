"""The square connector end to end against the emulator on a real localhost port."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connectors.base import ReadBack
from connectors.square.connector import NO_PHONE, SquareConnector, derived_key
from connectors.square.emulator import SquareEmulator
from connectors.square.mapping import format_time, parse_time
from connectors.square.settings import SquareSettings
from syncd.budget import TokenBucket
from syncd.clock import utcnow
from syncd.errors import DuplicateError, NotFoundError, OutcomeUnknownError, SkipError
from syncd.sandbox.server import serve_in_thread
from tests.connectors.square.conftest import (
    SEEDED,
    TOKEN,
    ManualClock,
    ScriptedRandom,
    square_settings,
)
from tests.fakes import FakeTime

pytestmark = pytest.mark.anyio


async def test_iterates_every_account_with_customer_emails(
    square: SquareConnector, seller: SquareEmulator
) -> None:
    """Pages of 200 to the end; emails (lower-cased) and names come from the customers."""
    pages = [page async for page in square.iter_accounts()]
    assert [len(p.accounts) for p in pages] == [200, SEEDED - 200]
    assert pages[0].cursor and pages[-1].cursor is None
    accounts = [a for p in pages for a in p.accounts]
    wire = seller.accounts()
    assert [a.id for a in accounts] == [w["id"] for w in wire]
    assert accounts[0].email == "customer1@example.com" and accounts[0].name == "Ann Lee"
    assert accounts[0].phone == "+14155550001"
    assert [a.balance for a in accounts] == [w["balance"] for w in wire]
    assert all(a.version == w["updated_at"] for a, w in zip(accounts, wire, strict=True))
    resumed = [page async for page in square.iter_accounts(pages[0].cursor)]
    assert [a.id for p in resumed for a in p.accounts] == [a.id for a in pages[1].accounts]
    stats = seller.stats.dump()["requests"]
    assert stats["POST /v2/customers/bulk-retrieve"] == 2 + 1 + 1  # ≤100 ids per call
    assert set(seller.stats.dump()["square_versions"]) == {"2025-08-20"}


async def test_get_account_reads_fresh(square: SquareConnector, seller: SquareEmulator) -> None:
    """get_account sees a till sale made a moment ago; an unknown id is NotFoundError."""
    target = seller.accounts()[5]
    seller.activity(target["id"], "sale", 40)
    account = await square.get_account(target["id"])
    assert account.balance == target["balance"] + 40
    assert account.phone == target["mapping"]["phone_number"]
    with pytest.raises(NotFoundError) as missing:
        await square.get_account("no-such-account")
    assert missing.value.status == 404 and missing.value.code == "NOT_FOUND"


async def test_find_by_phone(square: SquareConnector, seller: SquareEmulator) -> None:
    """Phone finds the account mapped to it (unique per program), or nothing."""
    found = await square.find_accounts("phone", "+14155550007")
    assert [a.id for a in found] == [seller.accounts()[6]["id"]]
    assert await square.find_accounts("phone", "+19995550000") == []


async def test_find_by_email_returns_every_candidate(
    square: SquareConnector, seller: SquareEmulator
) -> None:
    """Email goes through customer search; two customers sharing it give two accounts."""
    seller.seed_accounts(
        [
            {"email": "Twin@Example.com", "phone": "+14155559001", "name": "Twin One"},
            {"email": "twin@example.com", "phone": "+14155559002", "name": "Twin Two"},
        ]
    )
    seller.seed_customer(email="twin@example.com", name="No Account")
    found = await square.find_accounts("email", "TWIN@example.com")
    assert sorted(a.phone or "" for a in found) == ["+14155559001", "+14155559002"]
    assert {a.email for a in found} == {"twin@example.com"}
    assert await square.find_accounts("email", "nobody@example.com") == []
    with pytest.raises(ValueError):
        await square.find_accounts("loyalty_id", "x")


async def test_create_account_with_email_is_found_by_email(
    square: SquareConnector, seller: SquareEmulator
) -> None:
    """create_account makes the customer (email, name) first, so email matching finds the
    account; the same key again returns the same account and applies nothing twice."""
    created = await square.create_account(
        email="Nia@Example.com", phone="+14155558000", name="Nia Cruz", key="link-1"
    )
    assert (created.balance, created.phone) == (0, "+14155558000")
    [found] = await square.find_accounts("email", "nia@example.com")
    assert (found.id, found.email, found.name) == (created.id, "nia@example.com", "Nia Cruz")
    again = await square.create_account(
        email="nia@example.com", phone="+14155558000", name="Nia Cruz", key="link-1"
    )
    assert again.id == created.id
    applied = seller.stats.dump()["applied_writes"]
    assert applied[derived_key("link-1", "account")] == 1
    assert applied[derived_key("link-1", "customer")] == 1
    assert len([c for c in seller.customers() if c.get("phone_number") == "+14155558000"]) == 1


async def test_create_account_without_email(
    square: SquareConnector, seller: SquareEmulator
) -> None:
    """Without an email Square makes a phone-only customer; the account has no email."""
    created = await square.create_account(email=None, phone="+14155558001", name=None, key="k")
    assert created.email is None and created.phone == "+14155558001"
    assert seller.account(created.id)["customer_id"]


async def test_create_account_needs_a_phone(square: SquareConnector) -> None:
    """No phone: SkipError saying Square keys accounts by phone."""
    with pytest.raises(SkipError, match=NO_PHONE):
        await square.create_account(email="a@example.com", phone=None, name=None, key="k")


async def test_create_account_for_a_taken_phone_is_duplicate(
    square: SquareConnector, seller: SquareEmulator
) -> None:
    """A phone that already has an account: DuplicateError naming it."""
    with pytest.raises(DuplicateError) as taken:
        await square.create_account(email=None, phone="+14155550003", name=None, key="k2")
    assert taken.value.existing_id == seller.accounts()[2]["id"]
    assert taken.value.code == "CONFLICT"


async def test_apply_delta_retries_a_failed_answer_with_the_same_key(
    square: SquareConnector, seller: SquareEmulator
) -> None:
    """500 after commit, then the retry with the same key replays: the balance moves once."""
    target = seller.accounts()[10]
    seller.knobs.faults.fail_after_commit_rate = 0.5
    seller.knobs.faults.rng = ScriptedRandom([0.0])  # only the first answer fails
    result = await square.apply_delta(target["id"], 25, key="op-1", reason="syncd:op-1 from wix")
    assert seller.account(target["id"])["balance"] == target["balance"] + 25
    tagged = [
        e
        for e in seller.events()
        if e.get("adjust_points", {}).get("reason", "").startswith("syncd:op-1")
    ]
    assert [e["id"] for e in tagged] == [result.remote_id]
    stats = seller.stats.dump()
    assert stats["applied_writes"]["op-1"] == 1 and stats["replayed_writes"]["op-1"] == 1
    assert stats["faults"] == {"fail_after_commit": 1}


async def test_apply_delta_times_out_then_replays(
    seller: SquareEmulator, served_settings: SquareSettings
) -> None:
    """A hang after commit times the client out; the retry with the same key replays."""
    target = seller.accounts()[11]
    faults = seller.knobs.faults
    faults.timeout_after_commit_rate, faults.hang_seconds = 0.5, 1.0
    faults.rng = ScriptedRandom([0.0])
    async with SquareConnector(
        served_settings.model_copy(update={"timeout_seconds": 0.3})
    ) as square:
        assert isinstance(square, SquareConnector)
        result = await square.apply_delta(target["id"], -5, key="op-2", reason="syncd:op-2")
    assert result.remote_id
    assert seller.account(target["id"])["balance"] == target["balance"] - 5
    assert seller.stats.dump()["applied_writes"]["op-2"] == 1


async def test_unsettled_write_is_outcome_unknown_and_read_back_finds_it(
    square: SquareConnector, seller: SquareEmulator
) -> None:
    """Every answer failing after commit: OutcomeUnknownError, balance moved once, and
    read_back proves it APPLIED with the event id."""
    since = utcnow()
    target = seller.accounts()[12]
    seller.knobs.faults.fail_after_commit_rate = 1.0
    with pytest.raises(OutcomeUnknownError) as unknown:
        await square.apply_delta(target["id"], 7, key="op-3", reason="syncd:op-3")
    assert unknown.value.status == 500 and unknown.value.account == target["id"]
    seller.knobs.faults.fail_after_commit_rate = 0.0
    assert seller.account(target["id"])["balance"] == target["balance"] + 7
    assert seller.stats.dump()["applied_writes"]["op-3"] == 1
    found = await square.read_back(target["id"], key="op-3", since=since)
    assert found.outcome is ReadBack.APPLIED
    assert found.remote_id == seller.events()[-1]["id"]


async def test_read_back_absent_and_tag_boundaries(
    square: SquareConnector, seller: SquareEmulator
) -> None:
    """A key never written is ABSENT; "op-1" does not match a write tagged "op-10"."""
    since = utcnow() - timedelta(seconds=1)
    target = seller.accounts()[13]
    await square.apply_delta(target["id"], 3, key="op-10", reason="syncd:op-10 from wix")
    assert (
        await square.read_back(target["id"], key="op-1", since=since)
    ).outcome is ReadBack.ABSENT
    assert (
        await square.read_back(target["id"], key="op-10", since=since)
    ).outcome is ReadBack.APPLIED
    other = seller.accounts()[14]["id"]
    assert (await square.read_back(other, key="op-10", since=since)).outcome is ReadBack.ABSENT


async def test_read_back_pages_through_many_events(
    square: SquareConnector, seller: SquareEmulator
) -> None:
    """read_back follows the events cursor past the first 30 to find an older write."""
    since = utcnow() - timedelta(seconds=1)
    target = seller.accounts()[15]
    await square.apply_delta(target["id"], 1, key="op-old", reason="syncd:op-old")
    for i in range(40):
        await square.apply_delta(target["id"], 1, key=f"noise-{i}", reason=f"syncd:noise-{i}")
    found = await square.read_back(target["id"], key="op-old", since=since)
    assert found.outcome is ReadBack.APPLIED


async def test_apply_delta_refusals_are_skips(
    square: SquareConnector, seller: SquareEmulator
) -> None:
    """A negative result is SkipError BAD_REQUEST; a reused key with another delta is
    SkipError IDEMPOTENCY_KEY_REUSED; neither changes the balance."""
    target = seller.accounts()[16]  # balance 92
    with pytest.raises(SkipError) as negative:
        await square.apply_delta(target["id"], -1000, key="op-n", reason="syncd:op-n")
    assert (negative.value.status, negative.value.code) == (400, "BAD_REQUEST")
    await square.apply_delta(target["id"], 5, key="op-r", reason="syncd:op-r")
    with pytest.raises(SkipError) as reused:
        await square.apply_delta(target["id"], 6, key="op-r", reason="syncd:op-r")
    assert reused.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert seller.account(target["id"])["balance"] == target["balance"] + 5


async def test_changes_since_none_starts_now(square: SquareConnector) -> None:
    """None answers no ids and a cursor for now (our clock, RFC 3339)."""
    before = utcnow() - timedelta(seconds=1)
    start = await square.changes_since(None)
    assert start.account_ids == [] and parse_time(start.cursor) >= before
    with pytest.raises(ValueError):
        await square.changes_since("not-a-time")


async def test_changes_since_lists_till_and_api_changes_after_the_cursor(
    clock: ManualClock, fake_time: FakeTime
) -> None:
    """Till sales, redemptions and dashboard adjusts after the cursor (less the overlap) are
    listed oldest first; syncd's own (tagged) writes and older events are not; the new cursor
    is the newest event seen."""
    seller = SquareEmulator(access_token=TOKEN, clock=clock)
    accounts = seller.seed_accounts(5)  # balance events at the start time
    clock.advance(60)
    cursor = format_time(clock() - timedelta(seconds=30))
    budget = TokenBucket(100_000, clock=fake_time.clock, sleep=fake_time.sleep)
    with serve_in_thread(seller.app) as server:
        async with SquareConnector(square_settings(server.url), budget=budget) as square:
            assert isinstance(square, SquareConnector)
            assert (await square.changes_since(cursor)).account_ids == []
            sold, redeemed, adjusted = (accounts[i]["id"] for i in (3, 2, 4))
            seller.activity(sold, "sale", 10)
            clock.advance(1)
            seller.activity(redeemed, "redeem", 10)
            clock.advance(1)
            seller.activity(adjusted, "adjust", 4)  # the owner, in the dashboard
            ours = await square.apply_delta(sold, 1, key="op-d", reason="syncd:op-d from wix")
            changes = await square.changes_since(cursor)
            assert changes.account_ids == [sold, redeemed, adjusted]
            assert ours.remote_id not in {c.event_id for c in changes.changes}
            assert parse_time(changes.cursor) == parse_time(seller.events()[-1]["created_at"])
            again = await square.changes_since(changes.cursor)  # 5 s overlap: seen again
            assert again.account_ids == [sold, redeemed, adjusted]
            assert again.cursor == changes.cursor
