"""verify_webhook on real deliveries from the emulator, and on forged ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import anyio
import pytest
from pydantic import SecretStr

from connectors.base import ExternalEvent
from connectors.square.connector import SquareConnector, signature
from connectors.square.emulator import SquareEmulator
from syncd.errors import WebhookRejected
from syncd.sandbox.server import serve_in_thread
from tests.connectors.square.conftest import (
    NOTIFICATION_URL,
    SIGNATURE_KEY,
    Receiver,
    square_settings,
)

pytestmark = pytest.mark.anyio
NOW = datetime(2025, 3, 1, tzinfo=UTC)


def connector(**extra: object) -> SquareConnector:
    return SquareConnector(square_settings("http://square.invalid", **extra))


@pytest.fixture
async def delivered(
    emulator: SquareEmulator, receiver: Receiver
) -> list[tuple[bytes, dict[str, str]]]:
    """Webhooks the emulator really sent: a till sale (event + account) on one account."""
    account = emulator.seed_accounts([{"phone": "+14155550160"}])[0]
    emulator.activity(account["id"], "sale", 10)
    await emulator.webhooks.flush()
    return list(zip(receiver.bodies, receiver.headers, strict=True))


async def test_genuine_webhooks_verify_and_name_the_account(
    delivered: list[tuple[bytes, dict[str, str]]], emulator: SquareEmulator
) -> None:
    """Each delivered event verifies and names its account, from either object shape."""
    account_id = emulator.accounts()[0]["id"]
    square = connector()
    events = [
        e for body, headers in delivered for e in square.verify_webhook(body, headers, now=NOW)
    ]
    assert [(e.event_type, e.account_id) for e in events] == [
        ("loyalty.event.created", account_id),
        ("loyalty.account.updated", account_id),
    ]
    assert events[0].event_id == emulator.webhooks.events[0].event_id
    await square.aclose()


async def test_header_name_is_case_insensitive(
    delivered: list[tuple[bytes, dict[str, str]]],
) -> None:
    """The signature header is found whatever its case."""
    body, headers = delivered[0]
    upper = {k.upper(): v for k, v in headers.items()}
    assert connector().verify_webhook(body, upper, now=NOW)


@pytest.mark.parametrize(
    "forgery",
    ["wrong key", "wrong url", "tampered body", "missing header", "no key configured"],
)
async def test_forged_webhooks_are_rejected(
    delivered: list[tuple[bytes, dict[str, str]]], forgery: str
) -> None:
    """Breaking one thing at a time — key, URL, body, header, config — is WebhookRejected."""
    body, headers = delivered[0]
    square = connector()
    match forgery:
        case "wrong key":
            square = connector(webhook_signature_key=SecretStr("other-key"))
        case "wrong url":
            square = connector(webhook_url=NOTIFICATION_URL + "/")
        case "tampered body":
            body = body.replace(b'"points": 10', b'"points": 99')
            assert b"99" in body
        case "missing header":
            headers = {k: v for k, v in headers.items() if k != "x-square-hmacsha256-signature"}
        case _:
            square = connector(webhook_signature_key=None)
    with pytest.raises(WebhookRejected):
        square.verify_webhook(body, headers, now=NOW)


def test_signed_non_json_is_rejected() -> None:
    """A correctly signed body that is not a JSON event is still rejected."""
    for body in (b"not json", b"[1, 2]", b'{"type": "x"}'):
        headers = {
            "x-square-hmacsha256-signature": signature(SIGNATURE_KEY, NOTIFICATION_URL, body)
        }
        with pytest.raises(WebhookRejected):
            connector().verify_webhook(body, headers, now=NOW)


def test_account_id_from_each_payload_shape() -> None:
    """The account id comes from the account object, the event object, or data.id."""
    deleted = {"type": "loyalty_account", "id": "A1"}
    program = {"type": "loyalty_program", "id": "P"}
    bodies = {
        json.dumps({"event_id": "1", "type": "loyalty.account.deleted", "data": deleted}): "A1",
        json.dumps({"event_id": "2", "type": "loyalty.program.updated", "data": program}): None,
    }
    for text, account in bodies.items():
        body = text.encode()
        headers = {
            "x-square-hmacsha256-signature": signature(SIGNATURE_KEY, NOTIFICATION_URL, body)
        }
        [event] = connector().verify_webhook(body, headers, now=NOW)
        assert event == ExternalEvent(event.event_id, event.event_type, account)


async def test_served_emulator_delivers_webhooks_that_verify(
    seller: SquareEmulator, square: SquareConnector
) -> None:
    """On a real port the emulator's background sender POSTs each change to the receiver's
    port; every delivery verifies and names the changed account."""
    receiver = Receiver()
    with serve_in_thread(receiver.app) as hook_server:
        seller.webhooks.url = f"{hook_server.url}/hook"
        seller.webhooks.notification_url = NOTIFICATION_URL
        target = seller.accounts()[0]["id"]
        await square.apply_delta(target, 3, key="op-hook", reason="syncd:op-hook")
        seller.activity(target, "sale", 4)
        with anyio.fail_after(5):
            while len(receiver.bodies) < 4:
                await anyio.sleep(0.02)
    events = [
        event
        for body, headers in zip(receiver.bodies, receiver.headers, strict=True)
        for event in square.verify_webhook(body, headers, now=NOW)
    ]
    assert {e.account_id for e in events} == {target}
    assert sorted(e.event_type for e in events) == sorted(
        ["loyalty.event.created", "loyalty.account.updated"] * 2
    )
    assert len({e.event_id for e in events}) == 4
