"""The HubSpot emulator's `/_sandbox/` admin routes: knobs, seeding, operator edits, merges,
stats, reset and the webhook target."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from connectors.hubspot.emulator import HubSpotEmulator
from tests.fakes import ManualClock, Receiver

pytestmark = pytest.mark.anyio

TOKEN = "emulator-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POINTS = "wix_loyalty_points"


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def emulator(receiver: Receiver) -> HubSpotEmulator:
    return HubSpotEmulator(
        TOKEN, clock=ManualClock(), webhook_transport=httpx.ASGITransport(receiver.app)
    )


@pytest.fixture
async def admin(emulator: HubSpotEmulator) -> AsyncIterator[httpx.AsyncClient]:
    """No credentials: admin routes need none."""
    transport = httpx.ASGITransport(emulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hs") as http:
        yield http


async def test_knobs_read_and_patch(emulator: HubSpotEmulator, admin: httpx.AsyncClient) -> None:
    """GET /_sandbox/knobs lists every knob and the seed; PATCH changes nested ones; a bad
    knob is a 400 VALIDATION_ERROR changing nothing; {"seed"} re-seeds."""
    knobs = (await admin.get("/_sandbox/knobs")).json()
    assert knobs["requests_per_ten_seconds"] == 100 and knobs["search_max_results"] == 10_000
    assert knobs["faults"]["error_rate"] == 0.0 and knobs["delivery"]["drop_rate"] == 0.0
    assert knobs["seed"] == 0
    patch = {"search_lag_seconds": 2, "faults": {"latency_ms": 5}, "seed": 9}
    changed = (await admin.patch("/_sandbox/knobs", json=patch)).json()
    assert changed["search_lag_seconds"] == 2.0 and changed["faults"]["latency_ms"] == 5
    assert emulator.seed == 9
    bad = await admin.patch("/_sandbox/knobs", json={"daily_limit": "many", "token_expired": True})
    assert bad.status_code == 400 and bad.json()["category"] == "VALIDATION_ERROR"
    assert emulator.knobs.token_expired is False


async def test_seed_and_read_contacts(emulator: HubSpotEmulator, admin: httpx.AsyncClient) -> None:
    """POST /_sandbox/seed makes contacts ({"count"} or {"contacts"}); GET lists them with
    every value; an unknown id is a 404."""
    made = (await admin.post("/_sandbox/seed", json={"count": 3})).json()["results"]
    given = [{"email": "admin@example.com", "name": "Ada Min", "balance": 42}]
    more = (await admin.post("/_sandbox/seed", json={"contacts": given})).json()["results"]
    listed = (await admin.get("/_sandbox/contacts")).json()["results"]
    assert [c["id"] for c in listed] == [c["id"] for c in made + more]
    one = (await admin.get(f"/_sandbox/contacts/{more[0]['id']}")).json()
    assert one["properties"][POINTS] == "42" and one["properties"]["firstname"] == "Ada"
    assert (await admin.get("/_sandbox/contacts/5")).status_code == 404
    assert emulator.webhooks.batches == []


async def test_operator_edits(emulator: HubSpotEmulator, admin: httpx.AsyncClient) -> None:
    """PUT sets points, POST adds to them, PATCH edits any property, all as CRM_UI edits with
    history and webhooks."""
    contact = emulator.seed_contacts([{"email": "o@example.com", "balance": 10}])[0]
    base = f"/_sandbox/contacts/{contact['id']}"
    assert (await admin.put(f"{base}/points", json={"points": 50})).json()["properties"][
        POINTS
    ] == "50"
    assert (await admin.post(f"{base}/points", json={"delta": -5})).json()["properties"][
        POINTS
    ] == "45"
    edited = await admin.patch(base, json={"properties": {"email": "o2@example.com"}})
    assert edited.json()["properties"]["email"] == "o2@example.com"
    history = (await admin.get(f"{base}/history/{POINTS}")).json()["results"]
    assert [(h["value"], h["sourceType"]) for h in history] == [
        ("45", "CRM_UI"),
        ("50", "CRM_UI"),
        ("10", "IMPORT"),
    ]
    assert len(emulator.webhooks.batches[0].events) == 3
    refused = await admin.put(f"{base}/points", json={"points": "many"})
    assert refused.status_code == 400


async def test_merge_and_delete(emulator: HubSpotEmulator, admin: httpx.AsyncClient) -> None:
    """POST /_sandbox/merge merges two contacts; DELETE archives one."""
    primary, secondary, third = emulator.seed_contacts(3)
    body = {"primary_id": primary["id"], "secondary_id": secondary["id"]}
    assert (await admin.post("/_sandbox/merge", json=body)).json()["id"] == primary["id"]
    assert (await admin.delete(f"/_sandbox/contacts/{third['id']}")).status_code == 200
    assert [c["id"] for c in emulator.contacts()] == [primary["id"]]


async def test_stats_count_routes_and_statuses(
    emulator: HubSpotEmulator, admin: httpx.AsyncClient
) -> None:
    """GET /_sandbox/stats counts API requests by route and answers by status."""
    emulator.seed_contacts(1)
    await admin.get("/crm/v3/objects/contacts", headers=AUTH)
    await admin.get("/crm/v3/objects/contacts/1", headers=AUTH)
    await admin.get("/crm/v3/objects/contacts")
    stats = (await admin.get("/_sandbox/stats")).json()
    assert stats["requests"] == {
        "GET /crm/v3/objects/contacts": 2,
        "GET /crm/v3/objects/contacts/{contact_id}": 1,
    }
    assert stats["statuses"] == {"200": 1, "404": 1, "401": 1}


async def test_reset(emulator: HubSpotEmulator, admin: httpx.AsyncClient) -> None:
    """POST /_sandbox/reset empties the portal (contacts, custom properties, webhooks,
    stats, counted requests) and replays ids; {"knobs": true} restores the knobs."""
    first_ids = [c["id"] for c in emulator.seed_contacts(2)]
    emulator.set_points(first_ids[0], 3)
    spec = {
        "name": "extra",
        "label": "Extra",
        "type": "string",
        "fieldType": "text",
        "groupName": "contactinformation",
    }
    await admin.post("/crm/v3/properties/contacts", json=spec, headers=AUTH)
    emulator.knobs.search_lag_seconds = 3
    await admin.post("/_sandbox/reset", json={})
    assert emulator.contacts() == [] and emulator.webhooks.batches == []
    assert emulator.stats.dump()["requests"] == {} and emulator.knobs.search_lag_seconds == 3
    assert "extra" not in emulator.state.properties.defined
    assert POINTS in emulator.state.properties.defined
    assert [c["id"] for c in emulator.seed_contacts(2)] == first_ids
    await admin.post("/_sandbox/reset", json={"knobs": True})
    assert emulator.knobs.search_lag_seconds == 0.0


async def test_webhook_target_flush_and_log(
    emulator: HubSpotEmulator, admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    """PUT /_sandbox/webhooks sets where batches go and the URL they are signed for; flush
    sends them; the log lists subscriptions, batches and attempts."""
    target = {"url": "http://receiver/hook", "target_url": "https://x.example/hook"}
    assert (await admin.put("/_sandbox/webhooks", json=target)).json() == {
        "url": "http://receiver/hook",
        "target_url": "https://x.example/hook",
    }
    contact = emulator.seed_contacts(1)[0]
    emulator.set_points(contact["id"], 12)
    attempts = (await admin.post("/_sandbox/webhooks/flush")).json()["attempts"]
    assert [(a["attempt"], a["ok"]) for a in attempts] == [(1, True)]
    assert len(receiver.bodies) == 1
    log = (await admin.get("/_sandbox/webhooks/log")).json()
    assert log["target_url"] == "https://x.example/hook"
    assert {s["type"] for s in log["subscriptions"]} == {
        "contact.creation",
        "contact.deletion",
        "contact.merge",
        "contact.propertyChange",
    }
    assert [e["objectId"] for e in log["events"][0]["events"]] == [int(contact["id"])]
    assert len(log["attempts"]) == 1 and log["pending"] == []
