"""verify_webhook on batches the emulator signed, and on forged ones (one thing broken each)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from pydantic import SecretStr

from connectors.base import ExternalEvent
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.emulator import HubSpotEmulator
from connectors.hubspot.mapping import to_ms
from syncd.errors import WebhookRejected
from tests.connectors.hubspot.conftest import CLIENT_SECRET, POINTS, hubspot_settings
from tests.fakes import ManualClock

pytestmark = pytest.mark.anyio
Delivery = tuple[bytes, dict[str, str]]


def connector(**extra: object) -> HubSpotConnector:
    return HubSpotConnector(hubspot_settings("http://hubspot.invalid", **extra))


def signed(emulator: HubSpotEmulator, body: str, timestamp_ms: int | None = None) -> Delivery:
    """`body` with the headers HubSpot would send it with (the emulator's signer)."""
    return body.encode(), emulator.webhooks.headers_for(body, timestamp_ms)


@pytest.fixture
def delivery(emulator: HubSpotEmulator) -> Delivery:
    """A batch the emulator made: an operator's points edit on one contact."""
    [contact] = emulator.seed_contacts([{"email": "a@example.com", "balance": 10}])
    emulator.set_points(contact["id"], 25)
    return signed(emulator, emulator.webhooks.batches[-1].body)


async def test_genuine_batch_verifies_and_names_the_contact(
    delivery: Delivery, emulator: HubSpotEmulator, clock: ManualClock
) -> None:
    """Each event of the array comes back with its dedupe id, type and contact; headers are
    found whatever their case."""
    body, headers = delivery
    [raw] = json.loads(body)
    contact_id = str(raw["objectId"])
    upper = {k.upper(): v for k, v in headers.items()}
    [event] = connector().verify_webhook(body, upper, now=clock())
    assert event == ExternalEvent(
        f"{raw['subscriptionId']}:{contact_id}:{POINTS}:25:{raw['occurredAt']}",
        "contact.propertyChange",
        contact_id,
    )


async def test_creation_and_merge_events(
    emulator: HubSpotEmulator, hubspot: HubSpotConnector, clock: ManualClock
) -> None:
    """A creation names the new contact; a merge names the primary and the merged contacts."""
    primary, secondary = (c["id"] for c in emulator.seed_contacts(2))
    created = await hubspot.create_account(email="n@example.com", phone=None, name=None, key="k")
    emulator.merge(primary, secondary)
    events = [
        event
        for batch in emulator.webhooks.batches
        for event in hubspot.verify_webhook(*signed(emulator, batch.body), now=clock())
    ]
    assert ("contact.creation", created.id) in {(e.event_type, e.account_id) for e in events}
    [merge] = [e for e in events if e.event_type == "contact.merge"]
    assert (merge.account_id, merge.merged_ids) == (primary, (secondary,))


@pytest.mark.parametrize(
    "forgery",
    [
        "wrong secret",
        "wrong url",
        "tampered body",
        "missing signature",
        "missing timestamp",
        "timestamp not a number",
        "timestamp of 5000 digits",
        "no secret configured",
        "no url configured",
    ],
)
def test_forged_webhooks_are_rejected(delivery: Delivery, forgery: str, clock: ManualClock) -> None:
    """Breaking one thing at a time — secret, URL, body, headers, config — is rejected."""
    body, headers = delivery
    hubspot = connector()
    match forgery:
        case "wrong secret":
            hubspot = connector(client_secret=SecretStr("other-secret"))
        case "wrong url":
            hubspot = connector(webhook_url="https://syncd.example.com/webhooks/crm/")
        case "tampered body":
            body = body.replace(b'"25"', b'"95"')
            assert b'"95"' in body
        case "missing signature":
            headers = {k: v for k, v in headers.items() if k != "X-HubSpot-Signature-v3"}
        case "missing timestamp":
            headers = {k: v for k, v in headers.items() if k != "X-HubSpot-Request-Timestamp"}
        case "timestamp not a number":
            headers = headers | {"X-HubSpot-Request-Timestamp": "yesterday"}
        case "timestamp of 5000 digits":
            headers = headers | {"X-HubSpot-Request-Timestamp": "9" * 5000}
        case "no secret configured":
            hubspot = connector(client_secret=None)
        case _:
            hubspot = connector(webhook_url=None)
    with pytest.raises(WebhookRejected):
        hubspot.verify_webhook(body, headers, now=clock())


@pytest.mark.parametrize("off_seconds", [-301, 301])
def test_stale_or_future_timestamp_is_rejected(
    emulator: HubSpotEmulator, clock: ManualClock, off_seconds: int
) -> None:
    """Correctly signed, but more than 5 minutes from now either way: rejected (a replay)."""
    at = to_ms(clock() + timedelta(seconds=off_seconds))
    body, headers = signed(emulator, "[]", at)
    with pytest.raises(WebhookRejected, match="from now"):
        connector().verify_webhook(body, headers, now=clock())
    close = to_ms(clock() + timedelta(seconds=off_seconds * 299 // 301))
    assert connector().verify_webhook(*signed(emulator, "[]", close), now=clock()) == []


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        '{"objectId": 1}',
        "[1, 2]",
        "[" * 5000 + "]" * 5000,
        '[{"objectId": 1, "subscriptionType": "contact.creation"}]',
        '[{"subscriptionId": 1, "objectId": 2, "occurredAt": 3,'
        ' "subscriptionType": "contact.merge"}]',
    ],
)
def test_signed_bodies_that_are_not_events_are_rejected(
    emulator: HubSpotEmulator, clock: ManualClock, body: str
) -> None:
    """A genuine signature over a body that is not an array of complete events: rejected."""
    with pytest.raises(WebhookRejected):
        connector().verify_webhook(*signed(emulator, body), now=clock())


def test_events_of_other_objects_are_ignored(emulator: HubSpotEmulator, clock: ManualClock) -> None:
    """A company event beside a contact event: only the contact's comes back."""
    common = {"subscriptionId": 9, "occurredAt": 1, "portalId": 62515, "appId": 1}
    body = json.dumps(
        [
            common | {"objectId": 5, "subscriptionType": "company.propertyChange"},
            common | {"objectId": 6, "subscriptionType": "contact.deletion"},
        ]
    )
    [event] = connector().verify_webhook(*signed(emulator, body), now=clock())
    assert (event.event_type, event.account_id, event.event_id) == (
        "contact.deletion",
        "6",
        "9:6:::1",
    )


def test_signed_url_has_hubspots_escapes_decoded(clock: ManualClock) -> None:
    """A target URL registered with %-escapes verifies: HubSpot signs it with them decoded."""
    url = "https://syncd.example.com/webhooks/crm?portal=62515%2Cus%3Aeast&by=ops%40example.com"
    decoded = "https://syncd.example.com/webhooks/crm?portal=62515,us:east&by=ops@example.com"
    emulator = HubSpotEmulator(clock=clock, client_secret=CLIENT_SECRET, target_url=decoded)
    body, headers = signed(emulator, "[]")
    assert connector(webhook_url=url).verify_webhook(body, headers, now=clock()) == []
    with pytest.raises(WebhookRejected):
        connector().verify_webhook(body, headers, now=clock())
