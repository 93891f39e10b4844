"""Wix webhooks: the signed three-layer envelope, what fires when, and delivery faults."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt
import pytest

from syncd.sandbox.wix import WixEmulator
from tests.sandbox.conftest import ManualClock, Receiver, seed_one

ACCOUNTS = "/loyalty-accounts/v1/accounts"


def open_envelope(body: str, public_key_pem: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify the JWT (RS256 pinned, exp checked) and return (outer, inner) layers."""
    claims = jwt.decode(
        body, public_key_pem, algorithms=["RS256"], options={"require": ["exp", "iat"]}
    )
    assert isinstance(claims["data"], str)
    outer = json.loads(claims["data"])
    assert isinstance(outer["data"], str) and isinstance(outer["identity"], str)
    return outer, json.loads(outer["data"])


@pytest.mark.anyio
async def test_adjust_fires_points_updated_and_updated_verifiable_with_the_public_key(
    emulator: WixEmulator, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Adjust sends account_points_updated (actionEvent.body.account) and account_updated."""
    account = seed_one(emulator, balance=10)
    await client.post(
        f"{ACCOUNTS}/{account['id']}/adjust-points",
        json={"amount": 5, "revision": account["revision"]},
    )
    await emulator.webhooks.flush()
    opened = [open_envelope(b, emulator.public_key_pem) for b in receiver.texts]
    types = [outer["eventType"] for outer, _ in opened]
    assert types == [
        "wix.loyalty.v1.program_updated",
        "wix.loyalty.v1.account_points_updated",
        "wix.loyalty.v1.account_updated",
    ]
    outer, inner = opened[1]
    assert outer["instanceId"] == emulator.credentials.instance_id
    assert json.loads(outer["identity"]) == {
        "identityType": "APP",
        "appId": emulator.credentials.app_id,
    }
    assert outer["accountInfo"] == {"siteId": emulator.credentials.site_id}
    assert inner["entityFqdn"] == "wix.loyalty.v1.account" and inner["slug"] == "points_updated"
    assert inner["entityId"] == account["id"] and inner["triggeredByAnonymizeRequest"] is False
    body_account = inner["actionEvent"]["body"]["account"]
    assert body_account["points"]["balance"] == 15
    assert body_account["revision"] == str(int(account["revision"]) + 1)
    _, updated = opened[2]
    assert updated["updatedEvent"]["currentEntity"]["id"] == account["id"]
    assert int(updated["entityEventSequence"]) > int(inner["entityEventSequence"])
    assert len({i["id"] for _, i in opened}) == 3


@pytest.mark.anyio
async def test_a_tampered_body_fails_verification(
    emulator: WixEmulator, receiver: Receiver
) -> None:
    """Changing the claims and keeping the signature is rejected by PyJWT."""
    emulator.set_program_status("PAUSED")
    await emulator.webhooks.flush()
    header, _claims, signature = receiver.texts[-1].split(".")
    forged = jwt.utils.base64url_encode(b'{"data":"{}","exp":9999999999}').decode()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(f"{header}.{forged}.{signature}", emulator.public_key_pem, algorithms=["RS256"])


@pytest.mark.anyio
async def test_created_event_and_site_side_identity(
    emulator: WixEmulator, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Create Account fires account_created; a site redeem is attributed to a Wix user."""
    contact = (
        await client.post("/contacts/v4/contacts", json={"info": {"name": {"first": "Al"}}})
    ).json()["contact"]
    account = (await client.post(ACCOUNTS, json={"contactId": contact["id"]})).json()["account"]
    emulator.activity(account["id"], "earn", 10)
    emulator.activity(account["id"], "redeem", 4)
    await emulator.webhooks.flush()
    opened = [open_envelope(b, emulator.public_key_pem) for b in receiver.texts]
    created = next(i for o, i in opened if o["eventType"] == "wix.loyalty.v1.account_created")
    assert created["createdEvent"]["entity"]["id"] == account["id"]
    outer, inner = opened[-2]
    assert json.loads(outer["identity"])["identityType"] == "WIX_USER"
    assert inner["actionEvent"]["body"]["account"]["points"]["redeemed"] == 4


@pytest.mark.anyio
async def test_program_updated_carries_the_program(
    emulator: WixEmulator, receiver: Receiver
) -> None:
    """Pausing fires program_updated with the program as updatedEvent.currentEntity."""
    emulator.set_program_status("PAUSED")
    await emulator.webhooks.flush()
    outer, inner = open_envelope(receiver.texts[-1], emulator.public_key_pem)
    assert outer["eventType"] == "wix.loyalty.v1.program_updated"
    assert inner["entityFqdn"] == "wix.loyalty.v1.program"
    assert inner["updatedEvent"]["currentEntity"]["status"] == "PAUSED"


@pytest.mark.anyio
async def test_json_entity_encoding_knob(emulator: WixEmulator, receiver: Receiver) -> None:
    """With webhook_entity_encoding "json" the entity travels as a *AsJson string."""
    emulator.knobs.webhook_entity_encoding = "json"
    emulator.set_program_status("PAUSED")
    await emulator.webhooks.flush()
    _, inner = open_envelope(receiver.texts[-1], emulator.public_key_pem)
    assert json.loads(inner["updatedEvent"]["currentEntityAsJson"])["status"] == "PAUSED"


@pytest.mark.anyio
async def test_without_a_url_events_stay_queued(emulator: WixEmulator, receiver: Receiver) -> None:
    """url None: flush sends nothing and the events wait in the queue."""
    emulator.webhooks.url = None
    emulator.set_program_status("PAUSED")
    assert await emulator.webhooks.flush() == []
    assert len(emulator.webhooks.pending) == 2 and receiver.texts == []
    emulator.webhooks.url = "http://receiver/hook"
    await emulator.webhooks.flush()
    assert len(receiver.texts) == 2


@pytest.mark.anyio
async def test_non_2xx_answers_are_retried_until_accepted(
    emulator: WixEmulator, receiver: Receiver
) -> None:
    """A 500 then 404 then 200 makes three logged attempts of the same body."""
    emulator.webhooks.reset()
    receiver.statuses = [500, 404]
    emulator.set_program_status("PAUSED")
    attempts = await emulator.webhooks.flush()
    assert [(a.attempt, a.status, a.ok) for a in attempts] == [
        (1, 500, False),
        (2, 404, False),
        (3, 200, True),
    ]
    assert len(set(receiver.texts)) == 1


@pytest.mark.anyio
async def test_slow_answers_count_as_failures(emulator: WixEmulator, receiver: Receiver) -> None:
    """An answer slower than the timeout is a failed attempt; retries stop after the gaps."""
    emulator.webhooks.reset()
    emulator.knobs.webhook_timeout_seconds = 0.05
    emulator.knobs.webhook_retry_gaps_seconds = (0.0,)
    receiver.delay_seconds = 0.2
    emulator.set_program_status("PAUSED")
    attempts = await emulator.webhooks.flush()
    assert [(a.attempt, a.error) for a in attempts] == [(1, "timeout"), (2, "timeout")]


@pytest.mark.anyio
async def test_drop_and_duplicate_faults(emulator: WixEmulator, receiver: Receiver) -> None:
    """drop_rate 1 sends nothing (listed as dropped); duplicate_rate 1 sends each twice."""
    emulator.webhooks.reset()
    emulator.knobs.delivery.drop_rate = 1.0
    emulator.set_program_status("PAUSED")
    await emulator.webhooks.flush()
    assert receiver.texts == [] and len(emulator.webhooks.dropped) == 1
    emulator.knobs.delivery.drop_rate = 0.0
    emulator.knobs.delivery.duplicate_rate = 1.0
    emulator.set_program_status("ACTIVE")
    await emulator.webhooks.flush()
    assert len(receiver.texts) == 2 and receiver.texts[0] == receiver.texts[1]


@pytest.mark.anyio
async def test_reorder_window_shuffles_delivery(
    emulator: WixEmulator, receiver: Receiver, clock: ManualClock
) -> None:
    """reorder_window delivers every event once but not in emission order."""
    emulator.webhooks.reset()
    emulator.knobs.delivery.reorder_window = 10
    for _ in range(5):
        emulator.set_program_status("PAUSED")
        emulator.set_program_status("ACTIVE")
    emitted = [e.id for e in emulator.webhooks.events]
    await emulator.webhooks.flush()
    delivered = [open_envelope(b, emulator.public_key_pem)[1]["id"] for b in receiver.texts]
    assert sorted(delivered) == sorted(emitted) and delivered != emitted


@pytest.mark.anyio
async def test_resent_events_carry_their_original_time(
    emulator: WixEmulator, receiver: Receiver, clock: ManualClock
) -> None:
    """A retried event is the same JWT: its eventTime and iat are those of the change."""
    emulator.webhooks.reset()
    receiver.statuses = [503]
    emulator.set_program_status("PAUSED")
    clock.advance(30)
    await emulator.webhooks.flush()
    assert receiver.texts[0] == receiver.texts[1]
    claims = jwt.decode(receiver.texts[1], emulator.public_key_pem, algorithms=["RS256"])
    assert claims["iat"] == int((clock.now.timestamp()) - 30)


@pytest.mark.anyio
async def test_delay_fault_holds_each_delivery(emulator: WixEmulator, receiver: Receiver) -> None:
    """delay_ms waits before each webhook is sent."""
    emulator.webhooks.reset()
    emulator.knobs.delivery.delay_ms = 100
    emulator.set_program_status("PAUSED")
    started = time.monotonic()
    await emulator.webhooks.flush()
    assert time.monotonic() - started >= 0.1 and len(receiver.texts) == 1
