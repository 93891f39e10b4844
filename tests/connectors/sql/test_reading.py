"""Reading accounts from a POS database: paging, fresh reads, lookups, balance views."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from connectors.sql.connector import SqlConnector
from connectors.sql.emulator import SqlTill
from syncd.errors import NotFoundError
from tests.connectors.sql.conftest import MODES, SQLITE_ONLY, TillMaker, connect, people

pytestmark = pytest.mark.anyio


async def test_pages_every_account_in_id_order(till: SqlTill) -> None:
    """Keyset pages of page_size to the end; a page's cursor resumes after it."""
    ids = till.seed(people(25))
    async with connect(till, page_size=10) as pos:
        pages = [page async for page in pos.iter_accounts()]
        assert [len(p.accounts) for p in pages] == [10, 10, 5]
        assert [p.cursor for p in pages] == [ids[9], ids[19], None]
        accounts = [a for p in pages for a in p.accounts]
        assert [a.id for a in accounts] == ids
        assert [a.balance for a in accounts] == [10 * i for i in range(25)]
        assert accounts[3].email == "member3@example.com"
        assert accounts[3].phone == "+14155550003" and accounts[3].name == "Member 3"
        resumed = [a.id async for p in pos.iter_accounts(pages[0].cursor) for a in p.accounts]
        assert resumed == ids[10:]


@pytest.mark.parametrize("mode", MODES)
async def test_pages_text_ids(make_till: TillMaker, mode: str) -> None:
    """Text ids page in the database's order of them, each once, and resume by the last id."""
    till = make_till(mode, text_ids=True)
    ids = till.seed(people(7))
    async with connect(till, page_size=3) as pos:
        pages = [page async for page in pos.iter_accounts()]
        seen = [a.id for p in pages for a in p.accounts]
        assert sorted(seen) == sorted(ids) and len(pages) == 3
        assert seen == [a["id"] for a in till.accounts()]  # the database's own order
        resumed = [a.id async for p in pos.iter_accounts(pages[1].cursor) for a in p.accounts]
        assert resumed == seen[6:]


async def test_get_account_reads_fresh(till: SqlTill, pos: SqlConnector) -> None:
    """A till sale made a moment ago is in the balance, and the version moves with it; any id
    no row has is NotFoundError, never a database type error (integer columns), and a page
    cursor no id can be is refused before it reaches the database."""
    (member,) = till.seed(people(1, start=4))
    before = await pos.get_account(member)
    till.sale(member, 15)
    after = await pos.get_account(member)
    assert (before.balance, after.balance) == (40, 55)
    assert after.version != before.version
    for unknown in ("not-an-id", "99999999999999999999999", "", "1.5", "424242"):
        with pytest.raises(NotFoundError) as missing:
            await pos.get_account(unknown)
        assert missing.value.remote == "pos" and missing.value.account == unknown
    with pytest.raises(ValueError, match="not a sql page cursor"):
        [page async for page in pos.iter_accounts("abc")]


async def test_lookups_by_email_and_phone(till: SqlTill, pos: SqlConnector) -> None:
    """Email in any case; phone in E.164 however the till wrote it; several may share one."""
    ids = till.seed([*people(3), {"email": " MEMBER1@example.COM ", "phone": "+1 415 555 0001"}])
    by_email = await pos.find_accounts("email", "Member1@Example.com")
    assert [a.id for a in by_email] == [ids[1], ids[3]]
    by_phone = await pos.find_accounts("phone", "+14155550001")
    assert [a.id for a in by_phone] == [ids[1], ids[3]]
    assert [a.id for a in await pos.find_accounts("phone", "+14155550002")] == [ids[2]]
    assert await pos.find_accounts("email", "nobody@example.com") == []
    assert await pos.find_accounts("phone", "+14155559999") == []
    with pytest.raises(ValueError):
        await pos.find_accounts("loyalty_number", "1")


@pytest.mark.parametrize("database_url", SQLITE_ONLY, indirect=True)
async def test_without_a_phone_column_nothing_is_found_by_phone(make_till: TillMaker) -> None:
    """A table with no phone column (phone_column = "") finds nothing by phone."""
    till = make_till("ledger")
    till.seed(people(1))
    async with connect(till, phone_column="") as pos:
        assert await pos.find_accounts("phone", "+14155550000") == []
        assert (await pos.get_account("1")).phone is None


async def test_balance_view_is_read_in_ledger_mode(make_till: TillMaker) -> None:
    """With balance_view, balances come from that view, not from summing the ledger."""
    till = make_till("ledger")
    ids = till.seed(people(3, start=1))
    with till.engine.begin() as connection:
        connection.execute(
            text(
                "CREATE VIEW member_balances AS SELECT member_id, SUM(points) * 2 AS total "
                "FROM points_ledger GROUP BY member_id"
            )
        )
    async with connect(
        till, balance_view="member_balances", balance_view_points_column="total"
    ) as pos:
        assert (await pos.get_account(ids[0])).balance == 20
        assert [a.balance async for p in pos.iter_accounts() for a in p.accounts] == [20, 40, 60]
