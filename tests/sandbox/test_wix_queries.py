"""Query, Search and Count of accounts, and the transaction ledger, over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from syncd.sandbox.wix import WixEmulator
from tests.sandbox.conftest import ManualClock, seed_one

ACCOUNTS = "/loyalty-accounts/v1/accounts"
TRANSACTIONS = "/loyalty-transactions/v1/loyalty-transactions"


async def page_through(
    client: httpx.AsyncClient, path: str, wrapper: str, list_key: str, first: dict[str, Any]
) -> list[list[dict[str, Any]]]:
    """All pages of a cursor-paged call, sending only the cursor after the first."""
    pages = []
    body = (await client.post(path, json={wrapper: first})).json()
    pages.append(body[list_key])
    while body["pagingMetadata"]["cursors"]["next"]:
        cursor = body["pagingMetadata"]["cursors"]["next"]
        body = (
            await client.post(path, json={wrapper: {"cursorPaging": {"cursor": cursor}}})
        ).json()
        pages.append(body[list_key])
    return pages


@pytest.mark.anyio
async def test_query_pages_100_at_most(emulator: WixEmulator, client: httpx.AsyncClient) -> None:
    """250 accounts come in pages of 100, 100, 50; a limit of 101 is a 400."""
    emulator.seed_accounts(250)
    pages = await page_through(
        client, f"{ACCOUNTS}/query", "query", "loyaltyAccounts", {"cursorPaging": {"limit": 100}}
    )
    assert [len(p) for p in pages] == [100, 100, 50]
    assert len({a["id"] for p in pages for a in p}) == 250
    too_big = await client.post(
        f"{ACCOUNTS}/query", json={"query": {"cursorPaging": {"limit": 101}}}
    )
    assert too_big.status_code == 400
    violation = too_big.json()["details"]["validationError"]["fieldViolations"][0]
    assert violation["field"] == "query.cursorPaging.limit"


@pytest.mark.anyio
async def test_paging_with_inserts_between_pages_skips_and_repeats_nothing(
    emulator: WixEmulator, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    """Accounts created while a client pages (sorted by email) never shift the other rows."""
    emulator.seed_accounts([{"email": f"m{i:03d}@x.io", "name": "M"} for i in range(0, 60, 2)])
    original = {a["id"] for a in emulator.state.all_accounts()}
    seen: list[str] = []
    body = (
        await client.post(
            f"{ACCOUNTS}/query",
            json={
                "query": {"sort": [{"fieldName": "contact.email"}], "cursorPaging": {"limit": 7}}
            },
        )
    ).json()
    seen += [a["id"] for a in body["loyaltyAccounts"]]
    round_ = 0
    while body["pagingMetadata"]["cursors"]["next"]:
        clock.advance(1)
        emulator.seed_accounts(
            [
                {"email": f"a{round_}@x.io"},  # before the cursor
                {"email": f"m{round_ * 2 + 1:03d}@x.io"},
            ]
        )
        round_ += 1
        cursor = body["pagingMetadata"]["cursors"]["next"]
        body = (
            await client.post(
                f"{ACCOUNTS}/query", json={"query": {"cursorPaging": {"cursor": cursor}}}
            )
        ).json()
        seen += [a["id"] for a in body["loyaltyAccounts"]]
    assert len(seen) == len(set(seen))
    assert original <= set(seen)


@pytest.mark.anyio
async def test_query_filters_and_sorts(emulator: WixEmulator, client: httpx.AsyncClient) -> None:
    """Filters on points.balance and sorts DESC work over HTTP."""
    for balance in (5, 50, 500):
        seed_one(emulator, balance=balance)
    query = {
        "filter": {"points.balance": {"$gte": 50}},
        "sort": [{"fieldName": "points.balance", "order": "DESC"}],
    }
    body = (await client.post(f"{ACCOUNTS}/query", json={"query": query})).json()
    assert [a["points"]["balance"] for a in body["loyaltyAccounts"]] == [500, 50]
    assert body["pagingMetadata"] == {
        "count": 2,
        "cursors": {"next": None, "prev": None},
        "hasNext": False,
    }


@pytest.mark.anyio
async def test_query_list_key_knob(emulator: WixEmulator, client: httpx.AsyncClient) -> None:
    """query_list_key switches the Query Accounts list key to "accounts"."""
    seed_one(emulator)
    emulator.knobs.query_list_key = "accounts"
    body = (await client.post(f"{ACCOUNTS}/query", json={"query": {}})).json()
    assert len(body["accounts"]) == 1 and "loyaltyAccounts" not in body


@pytest.mark.anyio
async def test_search_by_contact_email_and_expression(
    emulator: WixEmulator, client: httpx.AsyncClient
) -> None:
    """Search filters on contact.email and matches free text in the expression."""
    emulator.seed_accounts(
        [{"email": "ann@shop.io", "name": "Ann Lee"}, {"email": "bob@shop.io", "name": "Bob Stone"}]
    )
    by_email = await client.post(
        f"{ACCOUNTS}/search", json={"search": {"filter": {"contact.email": "bob@shop.io"}}}
    )
    assert [a["contact"]["name"] for a in by_email.json()["accounts"]] == ["Bob Stone"]
    by_text = await client.post(
        f"{ACCOUNTS}/search", json={"search": {"search": {"expression": "ann"}}}
    )
    assert [a["contact"]["email"] for a in by_text.json()["accounts"]] == ["ann@shop.io"]
    count = await client.post(f"{ACCOUNTS}/count", json={"filter": {"contact.email": {"$ne": "x"}}})
    assert count.json() == {"count": 2}


@pytest.mark.anyio
async def test_every_points_change_writes_a_transaction(
    emulator: WixEmulator, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    """Earn, adjust and site redeem/expire each write one typed ledger row for the account."""
    account = seed_one(emulator, balance=50)  # EARN (seed)
    account_id = account["id"]
    clock.advance(1)
    await client.post(
        f"{ACCOUNTS}/{account_id}/adjust-points",
        json={"amount": 10, "revision": account["revision"], "description": "x"},
    )
    clock.advance(1)
    await client.post(
        f"{ACCOUNTS}/{account_id}/earn-points",
        json={"amount": 5, "appId": "a", "idempotencyKey": "k"},
    )
    clock.advance(1)
    emulator.activity(account_id, "redeem", 20)
    clock.advance(1)
    emulator.activity(account_id, "expire", 5)
    body = (
        await client.post(
            f"{TRANSACTIONS}/query", json={"query": {"filter": {"accountId": account_id}}}
        )
    ).json()
    rows = body["loyaltyTransactions"]
    assert [(t["transactionType"], t["amount"]) for t in rows] == [
        ("EARN", 50),
        ("ADJUST", 10),
        ("EARN", 5),
        ("REDEEM", -20),
        ("EXPIRE", -5),
    ]
    assert rows[-1]["expireInfo"] == {"amountBefore": 45, "amountAfter": 40}
    points = emulator.state.accounts[account_id].points
    assert points == {"balance": 40, "earned": 55, "adjusted": 10, "redeemed": 20, "expired": 5}
    one = await client.get(f"{TRANSACTIONS}/{rows[1]['id']}")
    assert one.json()["loyaltyTransaction"] == rows[1]


@pytest.mark.anyio
async def test_transactions_poll_by_created_date(
    emulator: WixEmulator, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    """The change feed: transactions created after a watermark, in creation order."""
    account = seed_one(emulator, balance=1)
    clock.advance(60)
    watermark = emulator.state.all_transactions()[-1]["createdDate"]
    clock.advance(1)
    emulator.activity(account["id"], "earn", 3)
    body = (
        await client.post(
            f"{TRANSACTIONS}/query",
            json={
                "query": {
                    "filter": {"createdDate": {"$gt": watermark}},
                    "cursorPaging": {"limit": 100},
                }
            },
        )
    ).json()
    assert [t["amount"] for t in body["loyaltyTransactions"]] == [3]
