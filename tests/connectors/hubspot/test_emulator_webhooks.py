"""The HubSpot emulator's webhooks: batched event bodies, v3 and v1 signatures, subscriptions,
merge events, retries counting attemptNumber, and delivery faults."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from connectors.hubspot.emulator import HubSpotEmulator
from tests.fakes import ManualClock, Receiver

pytestmark = pytest.mark.anyio

TOKEN = "emulator-token"
SECRET = "emulator-client-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POINTS = "wix_loyalty_points"
CONTACTS = "/crm/v3/objects/contacts"
HOOK_URL = "http://receiver/hook"
# Registered with escapes; the v3 signature covers it with HubSpot's listed ones decoded
# (%3D is not one of them).
TARGET_URL = "https://syncd.example.com/webhooks/crm%3Fv%3D1?tag=%28a%29%2Cb%40c"
SIGNED_URI = "https://syncd.example.com/webhooks/crm?v%3D1?tag=(a),b@c"


def expected_v3(body: str, timestamp: str, uri: str = SIGNED_URI) -> str:
    message = f"POST{uri}{body}{timestamp}".encode()
    return base64.b64encode(hmac.new(SECRET.encode(), message, hashlib.sha256).digest()).decode()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def emulator(clock: ManualClock, receiver: Receiver) -> HubSpotEmulator:
    emu = HubSpotEmulator(
        TOKEN,
        client_secret=SECRET,
        clock=clock,
        webhook_url=HOOK_URL,
        target_url=TARGET_URL,
        webhook_transport=httpx.ASGITransport(receiver.app),
    )
    emu.knobs.requests_per_ten_seconds = 0
    emu.knobs.webhook_retry_gaps_seconds = (0.0,) * 10
    return emu


@pytest.fixture
async def client(emulator: HubSpotEmulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(emulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hs", headers=AUTH) as http:
        yield http


def events(receiver: Receiver) -> list[list[dict[str, Any]]]:
    return [json.loads(body) for body in receiver.bodies]


async def test_api_write_sends_one_signed_batch(
    emulator: HubSpotEmulator, client: httpx.AsyncClient, receiver: Receiver, clock: ManualClock
) -> None:
    """A PATCH of points and email sends one POST: a JSON array with a propertyChange event
    per property (changeSource INTEGRATION), signed v3 over method + decoded registered URL
    + body + timestamp, and v1 over secret + body."""
    contact = emulator.seed_contacts([{"email": "w@example.com", "balance": 1}])[0]
    body = {"properties": {POINTS: "25", "email": "w2@example.com", "firstname": "Wes"}}
    await client.patch(f"{CONTACTS}/{contact['id']}", json=body)
    await emulator.webhooks.flush()
    [batch] = events(receiver)
    at = int(clock.now.timestamp() * 1000)
    common = {
        "subscriptionType": "contact.propertyChange",
        "portalId": 62515,
        "appId": 1160452,
        "objectId": int(contact["id"]),
        "occurredAt": at,
        "attemptNumber": 0,
        "changeSource": "INTEGRATION",
    }
    assert [{k: e[k] for k in common} for e in batch] == [common, common]
    assert [(e["propertyName"], e["propertyValue"]) for e in batch] == [
        (POINTS, "25"),
        ("email", "w2@example.com"),
    ]
    assert all(
        isinstance(e["eventId"], int) and isinstance(e["subscriptionId"], int) for e in batch
    )
    assert batch[0]["subscriptionId"] != batch[1]["subscriptionId"]
    raw, headers = receiver.texts[0], receiver.headers[0]
    stamp = headers["x-hubspot-request-timestamp"]
    assert stamp == str(at)
    assert headers["x-hubspot-signature-v3"] == expected_v3(raw, stamp)
    assert headers["x-hubspot-signature"] == hashlib.sha256(f"{SECRET}{raw}".encode()).hexdigest()
    assert headers["x-hubspot-signature-version"] == "v1"
    assert headers["content-type"] == "application/json"


async def test_headers_for_signs_a_batch_as_sent(
    emulator: HubSpotEmulator, receiver: Receiver
) -> None:
    """`batches` keeps each batch's body and timestamp; `headers_for` gives the headers
    HubSpot would send with them (default timestamp: now on the emulator's clock)."""
    contact = emulator.seed_contacts([{"email": "x@example.com"}])[0]
    emulator.set_points(contact["id"], 3)
    [batch] = emulator.webhooks.batches
    headers = emulator.webhooks.headers_for(batch.body, batch.timestamp_ms)
    assert headers["X-HubSpot-Request-Timestamp"] == str(batch.timestamp_ms)
    assert headers["X-HubSpot-Signature-v3"] == expected_v3(batch.body, str(batch.timestamp_ms))
    assert emulator.webhooks.headers_for(batch.body) == headers
    await emulator.webhooks.flush()
    assert receiver.texts == [batch.body]


async def test_ui_edits_and_subscriptions(
    emulator: HubSpotEmulator, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    """UI edits are changeSource CRM_UI with the user as sourceId; only the points property
    and email are subscribed (a firstname change sends nothing); seeding sends nothing."""
    contact = emulator.seed_contacts([{"email": "y@example.com", "balance": 4}])[0]
    assert emulator.webhooks.batches == []
    emulator.edit(contact["id"], {"firstname": "Yan"})
    emulator.add_points(contact["id"], 6)
    emulator.set_points(contact["id"], 10)  # unchanged: no event
    await emulator.webhooks.flush()
    [batch] = events(receiver)
    assert [(e["propertyName"], e["propertyValue"], e["changeSource"]) for e in batch] == [
        (POINTS, "10", "CRM_UI")
    ]
    assert batch[0]["sourceId"].startswith("userId:")


async def test_creation_deletion_and_merge_events(
    emulator: HubSpotEmulator, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    """Creating fires contact.creation then a propertyChange per subscribed value set;
    archiving fires contact.deletion; merging fires contact.merge with primaryObjectId,
    mergedObjectIds, newObjectId and numberOfPropertiesMoved."""
    created = await client.post(
        CONTACTS, json={"properties": {"email": "z@example.com", POINTS: "8"}}
    )
    new_id = int(created.json()["id"])
    primary, secondary, doomed = emulator.seed_contacts(
        [{"email": "p@example.com"}, {"email": "s@example.com", "balance": 3}, {}]
    )
    emulator.merge(primary["id"], secondary["id"])
    await client.delete(f"{CONTACTS}/{doomed['id']}")
    await emulator.webhooks.flush()
    [batch] = events(receiver)
    kinds = [(e["subscriptionType"], e["objectId"], e.get("propertyName")) for e in batch]
    assert kinds == [
        ("contact.creation", new_id, None),
        ("contact.propertyChange", new_id, "email"),
        ("contact.propertyChange", new_id, POINTS),
        ("contact.merge", int(primary["id"]), None),
        ("contact.deletion", int(doomed["id"]), None),
    ]
    merge = batch[3]
    assert merge["primaryObjectId"] == merge["newObjectId"] == int(primary["id"])
    assert merge["mergedObjectIds"] == [int(secondary["id"])]
    assert merge["numberOfPropertiesMoved"] == 1
    assert merge["changeSource"] == "CRM_UI" and batch[4]["changeSource"] == "INTEGRATION"


async def test_batches_split_at_batch_size(emulator: HubSpotEmulator, receiver: Receiver) -> None:
    """No POST carries more than webhook_batch_size events."""
    emulator.knobs.webhook_batch_size = 2
    contacts = emulator.seed_contacts(5)
    for contact in contacts:
        emulator.add_points(contact["id"], 1000)
    await emulator.webhooks.flush()
    assert [len(b) for b in events(receiver)] == [2, 2, 1]
    sent = [e["objectId"] for batch in events(receiver) for e in batch]
    assert sent == [int(c["id"]) for c in contacts]


async def test_retries_count_attempt_number_and_sign_each_try(
    emulator: HubSpotEmulator, receiver: Receiver, clock: ManualClock
) -> None:
    """A non-2xx answer is retried; each try's body says attemptNumber 0, 1, 2 and is signed
    afresh; the batch keeps the first try's body."""
    contact = emulator.seed_contacts([{"email": "r@example.com"}])[0]
    emulator.set_points(contact["id"], 1)
    receiver.statuses = [500, 503]
    attempts = await emulator.webhooks.flush()
    assert [(a.attempt, a.status, a.ok) for a in attempts] == [
        (1, 500, False),
        (2, 503, False),
        (3, 200, True),
    ]
    assert [batch[0]["attemptNumber"] for batch in events(receiver)] == [0, 1, 2]
    assert len({batch[0]["eventId"] for batch in events(receiver)}) == 1
    for raw, headers in zip(receiver.texts, receiver.headers, strict=True):
        stamp = headers["x-hubspot-request-timestamp"]
        assert headers["x-hubspot-signature-v3"] == expected_v3(raw, stamp)
    assert emulator.webhooks.batches[0].body == receiver.texts[0]


async def test_gives_up_after_ten_retries(emulator: HubSpotEmulator, receiver: Receiver) -> None:
    """HubSpot tries a batch at most 11 times (the first and 10 retries)."""
    contact = emulator.seed_contacts([{"email": "q@example.com"}])[0]
    emulator.set_points(contact["id"], 1)
    receiver.statuses = [500] * 20
    attempts = await emulator.webhooks.flush()
    assert len(attempts) == 11 and not any(a.ok for a in attempts)
    assert json.loads(receiver.texts[-1])[0]["attemptNumber"] == 10


async def test_delivery_faults_act_on_whole_batches(
    emulator: HubSpotEmulator, receiver: Receiver
) -> None:
    """drop_rate drops whole POSTs (kept in the log as dropped); duplicate_rate sends one
    twice, byte for byte."""
    contact = emulator.seed_contacts([{"email": "d@example.com"}])[0]
    emulator.knobs.delivery.drop_rate = 1.0
    emulator.set_points(contact["id"], 1)
    assert await emulator.webhooks.flush() == []
    assert len(emulator.webhooks.log()["dropped"]) == 1
    emulator.knobs.delivery.drop_rate = 0.0
    emulator.knobs.delivery.duplicate_rate = 1.0
    emulator.set_points(contact["id"], 2)
    await emulator.webhooks.flush()
    assert len(receiver.texts) == 2 and receiver.texts[0] == receiver.texts[1]
    assert json.loads(receiver.texts[0])[0]["propertyValue"] == "2"


async def test_without_a_url_batches_are_kept(clock: ManualClock) -> None:
    """With no webhook_url, batches are kept (readable, signable) and nothing is sent."""
    emulator = HubSpotEmulator(TOKEN, client_secret=SECRET, clock=clock, target_url=TARGET_URL)
    contact = emulator.seed_contacts([{"email": "k@example.com"}])[0]
    emulator.set_points(contact["id"], 5)
    assert await emulator.webhooks.flush() == []
    [batch] = emulator.webhooks.batches
    assert json.loads(batch.body)[0]["propertyValue"] == "5"
