"""The Square emulator's /_sandbox admin routes."""

from __future__ import annotations

import httpx
import pytest

from connectors.square.emulator import SquareEmulator
from tests.connectors.square.conftest import Receiver

pytestmark = pytest.mark.anyio


async def test_knobs_read_and_patch(emulator: SquareEmulator, admin: httpx.AsyncClient) -> None:
    """GET shows every knob; PATCH changes them, nested, and refuses unknown ones."""
    knobs = (await admin.get("/_sandbox/knobs")).json()
    assert knobs["negative_code"] == "BAD_REQUEST" and knobs["retry_after"] is None
    assert knobs["idempotency_key_ttl_seconds"] is None and "faults" in knobs
    patched = await admin.patch(
        "/_sandbox/knobs", json={"faults": {"error_rate": 0.5}, "retry_after": "computed"}
    )
    assert patched.json()["faults"]["error_rate"] == 0.5
    assert emulator.knobs.retry_after == "computed"
    bad = await admin.patch("/_sandbox/knobs", json={"nope": 1})
    assert bad.status_code == 400


async def test_seed_activity_and_dumps(emulator: SquareEmulator, admin: httpx.AsyncClient) -> None:
    """Seed (generated or given, negative allowed), till activity, and the dumps."""
    generated = (await admin.post("/_sandbox/seed", json={"count": 3})).json()["loyalty_accounts"]
    given = await admin.post(
        "/_sandbox/seed",
        json={
            "accounts": [
                {
                    "email": "neg@example.com",
                    "phone": "+14155550150",
                    "name": "Neg A",
                    "balance": -40,
                }
            ]
        },
    )
    negative = given.json()["loyalty_accounts"][0]
    assert len(generated) == 3 and negative["balance"] == -40
    sale = await admin.post(
        "/_sandbox/activity", json={"account_id": negative["id"], "kind": "sale", "points": 50}
    )
    assert sale.json()["loyalty_account"]["balance"] == 10 and len(sale.json()["event_ids"]) == 1
    bad_kind = await admin.post(
        "/_sandbox/activity", json={"account_id": negative["id"], "kind": "steal", "points": 1}
    )
    assert bad_kind.status_code == 400
    accounts = (await admin.get("/_sandbox/accounts")).json()["loyalty_accounts"]
    events = (await admin.get("/_sandbox/events")).json()["events"]
    customers = (await admin.get("/_sandbox/customers")).json()["customers"]
    assert len(accounts) == 4 and len(customers) == 4
    assert events[-1]["type"] == "ACCUMULATE_POINTS" and events[-1]["source"] == "SQUARE"
    lone = await admin.post("/_sandbox/customers", json={"email": "solo@example.com"})
    assert lone.json()["customer"]["email_address"] == "solo@example.com"
    program = (await admin.get("/_sandbox/program")).json()["program"]
    assert program["id"] == emulator.program_id


async def test_stats_count_requests_and_writes_per_key(
    emulator: SquareEmulator, client: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    """Stats count requests per route, statuses, versions, and applied writes per key."""
    account = emulator.seed_accounts(1)[0]
    body = {"idempotency_key": "k", "adjust_points": {"points": 1}}
    path = f"/v2/loyalty/accounts/{account['id']}/adjust"
    await client.post(path, json=body, headers={"Square-Version": "2025-08-20"})
    await client.post(path, json=body)
    stats = (await admin.get("/_sandbox/stats")).json()
    assert stats["requests"] == {"POST /v2/loyalty/accounts/{account_id}/adjust": 2}
    assert stats["statuses"] == {"200": 2} and stats["square_versions"] == {"2025-08-20": 1}
    assert stats["applied_writes"] == {"k": 1} and stats["replayed_writes"] == {"k": 1}


async def test_reset_empties_the_seller(emulator: SquareEmulator, admin: httpx.AsyncClient) -> None:
    """Reset leaves the seller as first made (same seed, same program id) with no accounts,
    events, customers, keys or stats; knobs stay unless asked."""
    emulator.seed_accounts(2)
    old_program = emulator.program_id
    emulator.knobs.requests_per_minute = 5
    assert (await admin.post("/_sandbox/reset", json={})).status_code == 200
    assert emulator.accounts() == [] and emulator.events() == [] and emulator.customers() == []
    assert emulator.program_id == old_program and emulator.knobs.requests_per_minute == 5
    await admin.post("/_sandbox/reset", json={"knobs": True})
    assert emulator.knobs.requests_per_minute == 1200


async def test_webhook_admin_routes(
    emulator: SquareEmulator, admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    """PUT sets target, registered URL and key; flush sends; the log lists everything."""
    put = await admin.put(
        "/_sandbox/webhooks",
        json={
            "url": "http://receiver/hook",
            "notification_url": "https://x.test/h",
            "signature_key": "k2",
        },
    )
    assert put.json() == {"url": "http://receiver/hook", "notification_url": "https://x.test/h"}
    account = emulator.seed_accounts(1)[0]
    emulator.activity(account["id"], "sale", 3)
    flushed = (await admin.post("/_sandbox/webhooks/flush")).json()["attempts"]
    assert [a["ok"] for a in flushed] == [True, True]
    log = (await admin.get("/_sandbox/webhooks/log")).json()
    assert [e["type"] for e in log["events"]] == [
        "loyalty.event.created",
        "loyalty.account.updated",
    ]
    assert log["pending"] == [] and len(log["attempts"]) == 2
    assert emulator.webhooks.signature_key == "k2" and len(receiver.bodies) == 2
