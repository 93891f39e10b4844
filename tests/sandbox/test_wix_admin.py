"""The /_sandbox admin routes of the Wix emulator."""

from __future__ import annotations

import httpx
import pytest

from syncd.sandbox.wix import WixEmulator
from tests.sandbox.conftest import Receiver, seed_one


@pytest.mark.anyio
async def test_knobs_read_and_patch(emulator: WixEmulator, admin: httpx.AsyncClient) -> None:
    """GET shows every knob with its default; PATCH changes nested ones; bad ones are 400."""
    knobs = (await admin.get("/_sandbox/knobs")).json()
    assert knobs["requests_per_minute"] == 200 and knobs["retry_after"] == "computed"
    assert knobs["faults"]["hang_seconds"] == 30 and knobs["delivery"]["reorder_window"] == 0
    patched = await admin.patch(
        "/_sandbox/knobs", json={"negative_status": 422, "faults": {"latency_ms": 5}}
    )
    assert patched.json()["negative_status"] == 422
    assert emulator.knobs.faults.latency_ms == 5
    bad = await admin.patch("/_sandbox/knobs", json={"adjust_without_revision": "maybe"})
    assert bad.status_code == 400
    assert emulator.knobs.adjust_without_revision == "accept"


@pytest.mark.anyio
async def test_seed_dump_and_reset(emulator: WixEmulator, admin: httpx.AsyncClient) -> None:
    """Seed makes accounts with balances; dumps show them; reset empties the site."""
    seeded = await admin.post(
        "/_sandbox/seed",
        json={
            "accounts": [
                {
                    "email": "a@x.io",
                    "name": "A B",
                    "phone": "(415) 555-0100",
                    "countryCode": "US",
                    "balance": 30,
                }
            ]
        },
    )
    assert seeded.json()["accounts"][0]["points"]["balance"] == 30
    more = await admin.post("/_sandbox/seed", json={"count": 3})
    assert len(more.json()["accounts"]) == 3
    assert len((await admin.get("/_sandbox/accounts")).json()["accounts"]) == 4
    contacts = (await admin.get("/_sandbox/contacts")).json()["contacts"]
    assert contacts[0]["info"]["phones"]["items"][0]["e164Phone"] == "+14155550100"
    ledger = (await admin.get("/_sandbox/transactions")).json()["transactions"]
    assert ledger[0]["transactionType"] == "EARN" and ledger[0]["amount"] == 30
    await admin.post("/_sandbox/reset")
    assert (await admin.get("/_sandbox/accounts")).json() == {"accounts": []}
    assert emulator.state.program.status == "DRAFT"


@pytest.mark.anyio
async def test_program_status_and_site_activity(
    emulator: WixEmulator, admin: httpx.AsyncClient
) -> None:
    """PUT program sets the status; activity redeems on the site and queues webhooks."""
    account = seed_one(emulator, balance=50)
    emulator.webhooks.reset()
    redeemed = await admin.post(
        "/_sandbox/activity", json={"accountId": account["id"], "kind": "redeem", "amount": 20}
    )
    assert redeemed.json()["account"]["points"]["balance"] == 30
    tx = emulator.state.transaction(redeemed.json()["transactionId"])
    assert tx["transactionType"] == "REDEEM" and tx["amount"] == -20 and "redeemInfo" in tx
    too_much = await admin.post(
        "/_sandbox/activity", json={"accountId": account["id"], "kind": "redeem", "amount": 31}
    )
    assert too_much.status_code == 400
    paused = await admin.put("/_sandbox/program", json={"status": "PAUSED"})
    assert paused.json()["loyaltyProgram"]["status"] == "PAUSED"
    types = [e.event_type for e in emulator.webhooks.events]
    assert types == [
        "wix.loyalty.v1.account_points_updated",
        "wix.loyalty.v1.account_updated",
        "wix.loyalty.v1.program_updated",
    ]


@pytest.mark.anyio
async def test_webhook_admin_routes(
    emulator: WixEmulator, admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Set the URL, read the public key, flush, and read the attempt log."""
    assert (await admin.put("/_sandbox/webhooks", json={"url": None})).json() == {"url": None}
    emulator.set_program_status("PAUSED")
    assert (await admin.post("/_sandbox/webhooks/flush")).json() == {"attempts": []}
    await admin.put("/_sandbox/webhooks", json={"url": "http://receiver/hook"})
    key = await admin.get("/_sandbox/webhooks/public-key")
    assert key.text.startswith("-----BEGIN PUBLIC KEY-----")
    flushed = (await admin.post("/_sandbox/webhooks/flush")).json()["attempts"]
    assert [a["ok"] for a in flushed] == [True, True]
    log = (await admin.get("/_sandbox/webhooks/log")).json()
    assert log["pending"] == [] and len(log["attempts"]) == 2 and len(log["events"]) == 2


@pytest.mark.anyio
async def test_stats_count_requests_and_faults(
    emulator: WixEmulator, client: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    """stats counts requests per route, statuses and injected faults."""
    await client.get("/loyalty-programs/v1/program")
    emulator.knobs.faults.error_rate = 1.0
    await client.get("/loyalty-programs/v1/program")
    stats = (await admin.get("/_sandbox/stats")).json()
    assert stats["requests"] == {"GET /loyalty-programs/v1/program": 2}
    assert stats["statuses"] == {"200": 1, "503": 1}
    assert stats["faults"] == {"error_before_apply": 1}


@pytest.mark.anyio
async def test_recalculation_noise(emulator: WixEmulator, admin: httpx.AsyncClient) -> None:
    """recalculate fires account_updated for every account without changing a revision."""
    emulator.seed_accounts(3)
    before = emulator.state.all_accounts()
    emulator.webhooks.reset()
    assert (await admin.post("/_sandbox/recalculate")).json() == {"accounts": 3}
    assert [e.event_type for e in emulator.webhooks.events] == [
        "wix.loyalty.v1.account_updated"
    ] * 3
    assert emulator.state.all_accounts() == before
