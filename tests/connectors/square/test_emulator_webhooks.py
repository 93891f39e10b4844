"""The Square emulator's webhooks: body shape, HMAC signature, retries and delivery faults."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import httpx
import pytest

from connectors.square.emulator import SquareEmulator
from tests.connectors.square.conftest import NOTIFICATION_URL, SIGNATURE_KEY, Receiver

pytestmark = pytest.mark.anyio


def expected_signature(body: bytes, url: str = NOTIFICATION_URL, key: str = SIGNATURE_KEY) -> str:
    digest = hmac.new(key.encode(), url.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


async def test_balance_change_sends_signed_event_and_account_webhooks(
    emulator: SquareEmulator, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    """An adjust sends loyalty.event.created then loyalty.account.updated, each signed over
    the registered notification URL + the raw body."""
    account = emulator.seed_accounts([{"phone": "+14155550140"}])[0]
    body = {"idempotency_key": "k", "adjust_points": {"points": 9, "reason": "syncd:k"}}
    event = (await client.post(f"/v2/loyalty/accounts/{account['id']}/adjust", json=body)).json()
    await emulator.webhooks.flush()
    decoded = [json.loads(b) for b in receiver.bodies]
    assert [d["type"] for d in decoded] == ["loyalty.event.created", "loyalty.account.updated"]
    created, updated = decoded
    assert created["merchant_id"] == "MLSANDBOX0001" and created["event_id"]
    assert created["data"]["type"] == "loyalty_event"
    assert created["data"]["id"] == event["event"]["id"]
    assert created["data"]["object"]["loyalty_event"] == event["event"]
    assert updated["data"] == {
        "type": "loyalty_account",
        "id": account["id"],
        "object": {"loyalty_account": emulator.account(account["id"])},
    }
    for raw, headers in zip(receiver.bodies, receiver.headers, strict=True):
        assert headers["x-square-hmacsha256-signature"] == expected_signature(raw)
        assert headers["content-type"] == "application/json"
        assert "square-retry-number" not in headers


async def test_account_create_and_till_activity_fire_webhooks(
    emulator: SquareEmulator, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Create Loyalty Account fires loyalty.account.created; a till sale fires the pair."""
    body = {
        "loyalty_account": {
            "program_id": emulator.program_id,
            "mapping": {"phone_number": "+14155550141"},
        },
        "idempotency_key": "c",
    }
    account = (await client.post("/v2/loyalty/accounts", json=body)).json()["loyalty_account"]
    emulator.activity(account["id"], "sale", 12)
    await emulator.webhooks.flush()
    decoded = [json.loads(b) for b in receiver.bodies]
    assert [d["type"] for d in decoded] == [
        "loyalty.account.created",
        "loyalty.event.created",
        "loyalty.account.updated",
    ]
    assert decoded[1]["data"]["object"]["loyalty_event"]["source"] == "SQUARE"


async def test_failed_delivery_is_retried_with_square_retry_headers(
    emulator: SquareEmulator, receiver: Receiver
) -> None:
    """A non-2xx answer is retried: same bytes, same event id, square-retry-* headers."""
    account = emulator.seed_accounts([{"phone": "+14155550142"}])[0]
    receiver.statuses = [500]
    emulator.activity(account["id"], "adjust", 5)
    attempts = await emulator.webhooks.flush()
    assert [a.ok for a in attempts] == [False, True, True]
    assert receiver.bodies[0] == receiver.bodies[1]
    retry = receiver.headers[1]
    assert retry["square-retry-number"] == "1"
    assert retry["square-retry-reason"] == "http_error"
    assert retry["square-initial-delivery-timestamp"].endswith("Z")
    assert retry["x-square-hmacsha256-signature"] == expected_signature(receiver.bodies[1])


async def test_slow_answer_counts_as_timeout(emulator: SquareEmulator, receiver: Receiver) -> None:
    """An answer slower than webhook_timeout_seconds is retried with reason http_timeout."""
    emulator.knobs.webhook_timeout_seconds = 0.05
    emulator.knobs.webhook_retry_gaps_seconds = (0.0,)
    account = emulator.seed_accounts([{"phone": "+14155550143"}])[0]
    receiver.delay_seconds = 0.2
    emulator.activity(account["id"], "adjust", 5)
    attempts = await emulator.webhooks.flush()
    assert [a.error for a in attempts][:2] == ["timeout", "timeout"]


async def test_delivery_faults_duplicate_and_drop(
    emulator: SquareEmulator, receiver: Receiver
) -> None:
    """duplicate_rate sends an event twice with one event id; drop_rate never sends it."""
    account = emulator.seed_accounts([{"phone": "+14155550144"}])[0]
    emulator.knobs.delivery.duplicate_rate = 1.0
    emulator.activity(account["id"], "adjust", 5)
    await emulator.webhooks.flush()
    ids = [json.loads(b)["event_id"] for b in receiver.bodies]
    assert len(ids) == 4 and ids[0] == ids[1] and ids[2] == ids[3]
    emulator.knobs.delivery.duplicate_rate = 0.0
    emulator.knobs.delivery.drop_rate = 1.0
    emulator.activity(account["id"], "adjust", 5)
    await emulator.webhooks.flush()
    assert len(receiver.bodies) == 4
    assert len(emulator.webhooks.log()["dropped"]) == 2


async def test_signature_uses_the_registered_url_when_it_differs(
    emulator: SquareEmulator, receiver: Receiver
) -> None:
    """Posting to one URL, the signature covers the notification URL registered at Square."""
    emulator.webhooks.notification_url = None
    account = emulator.seed_accounts([{"phone": "+14155550145"}])[0]
    emulator.activity(account["id"], "adjust", 5)
    await emulator.webhooks.flush()
    signature = receiver.headers[0]["x-square-hmacsha256-signature"]
    assert signature == expected_signature(receiver.bodies[0], url="http://receiver/hook")
