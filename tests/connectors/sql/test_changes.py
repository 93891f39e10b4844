"""The change feed: the till's changes since a cursor, syncd's own writes left out."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connectors.sql.emulator import SqlTill
from connectors.sql.mapping import state_of
from syncd.clock import utcnow
from tests.connectors.sql.conftest import MODES, TillMaker, connect, people
from tests.fakes import ManualClock

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", MODES)
async def test_updated_at_feed_reports_the_tills_changes(make_till: TillMaker, mode: str) -> None:
    """Changes older than the start are not reported; a till sale is, syncd's write is not;
    a poll within the overlap reports the sale again under the same event id."""
    clock = ManualClock(utcnow() - timedelta(hours=1))
    till = make_till(mode, clock=clock)
    sold, synced = till.seed(people(2))
    clock.now = utcnow()
    async with connect(till) as pos:
        start = await pos.changes_since(None)
        assert start.changes == []
        till.sale(sold, 12)
        await pos.apply_delta(synced, 3, key="op-feed", reason="syncd:op-feed")
        page = await pos.changes_since(start.cursor)
        assert page.account_ids == [sold]
        again = await pos.changes_since(page.cursor)
        assert again.changes == page.changes


async def test_a_till_change_syncd_wrote_over_is_still_reported(make_till: TillMaker) -> None:
    """Column mode: a sale, then syncd's write before any poll: the sale is reported under the
    state it left, and syncd's later writes alone report nothing new."""
    till = make_till("column")
    (member,) = till.seed(people(1))
    async with connect(till) as pos:
        start = await pos.changes_since(None)
        till.sale(member, 5)
        (sold,) = [a for a in till.accounts() if a["id"] == member]
        sale_state = state_of(int(member), sold["updated_at"], sold["version"], None)
        await pos.apply_delta(member, 1, key="op-over-1", reason="syncd:op-over-1")
        await pos.apply_delta(member, 1, key="op-over-2", reason="syncd:op-over-2")
        page = await pos.changes_since(start.cursor)
        assert [(c.event_id, c.account_id) for c in page.changes] == [(sale_state, member)]
        assert (await pos.changes_since(page.cursor)).changes == page.changes


async def test_a_ledger_row_without_a_syncd_tag_is_the_tills(make_till: TillMaker) -> None:
    """Ledger mode: a row with a key but no `syncd:` reason (the POS's own keys) is reported."""
    till = make_till("ledger")
    (member,) = till.seed(people(1))
    assert till.ledger is not None
    async with connect(till) as pos:
        start = await pos.changes_since(None)
        with till.engine.begin() as connection:
            connection.execute(
                till.ledger.insert().values(
                    member_id=int(member),
                    points=4,
                    operation_id="pos-receipt-77",
                    reason="receipt 77",
                    created_at=utcnow().replace(tzinfo=None),
                )
            )
        page = await pos.changes_since(start.cursor)
    assert member in page.account_ids


async def test_snapshot_feed_reports_balance_differences(till: SqlTill) -> None:
    """changes = "snapshot": till changes are reported once, syncd's are not, and a poll
    repeated with a lost cursor reports the same event ids."""
    ids = till.seed(people(3, start=1))
    async with connect(till, changes="snapshot") as pos:
        assert await pos.prepare() != []
        start = await pos.changes_since(None)
        assert start.changes == []
        till.sale(ids[0], 5)
        await pos.apply_delta(ids[1], 7, key="op-snap", reason="syncd:op-snap")
        page = await pos.changes_since(start.cursor)
        assert [(c.event_id, c.account_id) for c in page.changes] == [
            (f"{ids[0]}:10->15:2", ids[0])
        ]
        repeated = await pos.changes_since(start.cursor)
        assert repeated.changes == page.changes and repeated.cursor == page.cursor
        assert (await pos.changes_since(page.cursor)).changes == []
        till.redeem(ids[2], 30)
        (new,) = till.seed([{"email": "late@example.com", "balance": 9}])
        later = await pos.changes_since(page.cursor)
        assert {c.event_id for c in later.changes} == {f"{ids[2]}:30->0:3", f"{new}:none->9:3"}


async def test_cursors_of_another_feed_are_refused(make_till: TillMaker) -> None:
    """A cursor the configured feed did not make is a ValueError, not a silent restart."""
    till = make_till("ledger")
    async with connect(till) as pos:
        with pytest.raises(ValueError, match="not a sql change cursor"):
            await pos.changes_since("g:3")
    async with connect(till, changes="snapshot") as pos:
        with pytest.raises(ValueError, match="not a sql change cursor"):
            await pos.changes_since("t:2025-01-01T00:00:00")
