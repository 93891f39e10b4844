"""Loyalty accounts: create, read, Adjust Points with revisions, Earn Points idempotency."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from syncd.sandbox.wix import WixEmulator
from tests.sandbox.conftest import seed_one

ACCOUNTS = "/loyalty-accounts/v1/accounts"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def adjust(client: httpx.AsyncClient, account_id: str, **body: Any) -> httpx.Response:
    """POST adjust-points with `body`."""
    return await client.post(f"{ACCOUNTS}/{account_id}/adjust-points", json=body)


async def new_contact(client: httpx.AsyncClient, email: str) -> str:
    """Create a contact through the API and return its id."""
    response = await client.post(
        "/contacts/v4/contacts", json={"info": {"emails": {"items": [{"email": email}]}}}
    )
    return str(response.json()["contact"]["id"])


@pytest.mark.anyio
async def test_create_account_for_a_contact_once(client: httpx.AsyncClient) -> None:
    """An account starts empty at revision "1"; a second one for the contact is 409."""
    contact_id = await new_contact(client, "new@example.com")
    response = await client.post(ACCOUNTS, json={"contactId": contact_id})
    assert response.status_code == 200
    account = response.json()["account"]
    assert account["contactId"] == contact_id and account["revision"] == "1"
    assert account["points"] == {
        "balance": 0,
        "earned": 0,
        "adjusted": 0,
        "redeemed": 0,
        "expired": 0,
    }
    assert account["contact"]["email"] == "new@example.com"
    assert all(ISO_MS.match(account[k]) for k in ("createdDate", "updatedDate", "lastActivityDate"))
    again = await client.post(ACCOUNTS, json={"contactId": contact_id})
    assert again.status_code == 409
    assert (await client.post(ACCOUNTS, json={"contactId": "no-such"})).status_code == 404


@pytest.mark.anyio
async def test_create_account_needs_an_active_program(
    emulator: WixEmulator, client: httpx.AsyncClient
) -> None:
    """While the program is PAUSED, Create Account is refused (428 by default)."""
    contact_id = await new_contact(client, "late@example.com")
    await client.post("/loyalty-programs/v1/program/pause")
    response = await client.post(ACCOUNTS, json={"contactId": contact_id})
    assert response.status_code == 428
    assert response.json()["details"]["applicationError"]["code"] == "PROGRAM_NOT_ACTIVE"


@pytest.mark.anyio
async def test_get_and_fetch_by_contact(emulator: WixEmulator, client: httpx.AsyncClient) -> None:
    """Get by id (extra query params ignored) and fetch-by contactId return the account."""
    account = seed_one(emulator)
    by_id = await client.get(f"{ACCOUNTS}/{account['id']}", params={"id": account["id"]})
    by_contact = await client.get(
        f"{ACCOUNTS}/fetch-by", params={"contactId": account["contactId"]}
    )
    assert by_id.json()["account"] == by_contact.json()["account"] == account
    assert (await client.get(f"{ACCOUNTS}/missing")).status_code == 404
    assert (await client.get(f"{ACCOUNTS}/fetch-by", params={"contactId": "x"})).status_code == 404


@pytest.mark.anyio
async def test_adjust_with_current_revision_applies_and_bumps_it(
    emulator: WixEmulator, client: httpx.AsyncClient
) -> None:
    """A relative adjust with the current revision changes balance and adjusted, revision +1."""
    account = seed_one(emulator, balance=100)
    response = await adjust(
        client,
        account["id"],
        accountId=account["id"],
        amount=-30,
        revision=account["revision"],
        description="syncd:op-1",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["account"]["points"]["balance"] == 70
    assert body["account"]["points"]["adjusted"] == -30
    assert body["account"]["revision"] == str(int(account["revision"]) + 1)
    tx = emulator.state.transaction(body["transactionId"])
    assert tx["transactionType"] == "ADJUST" and tx["amount"] == -30
    assert tx["description"] == "syncd:op-1"
    assert tx["adjustInfo"] == {
        "appId": emulator.credentials.app_id,
        "amountBefore": 100,
        "amountAfter": 70,
    }


@pytest.mark.anyio
async def test_adjust_with_stale_revision_is_409_and_changes_nothing(
    emulator: WixEmulator, client: httpx.AsyncClient
) -> None:
    """A revision that is not the current one is refused with Wix's stale-revision message."""
    account = seed_one(emulator, balance=100)
    await adjust(client, account["id"], amount=5, revision=account["revision"], description="a")
    stale = await adjust(
        client, account["id"], amount=5, revision=account["revision"], description="b"
    )
    assert stale.status_code == 409
    assert stale.json()["message"] == "entity has already changed since the requested revision"
    assert emulator.state.accounts[account["id"]].points["balance"] == 105


@pytest.mark.anyio
async def test_adjust_to_an_absolute_balance_wins_over_amount(
    emulator: WixEmulator, client: httpx.AsyncClient
) -> None:
    """With both balance and amount sent, balance sets the result."""
    account = seed_one(emulator, balance=100)
    response = await adjust(
        client,
        account["id"],
        balance=40,
        amount=999,
        revision=account["revision"],
        description="set",
    )
    assert response.json()["account"]["points"]["balance"] == 40
    tx = emulator.state.transaction(response.json()["transactionId"])
    assert tx["amount"] == -60 and tx["adjustInfo"]["amountAfter"] == 40


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": 10_000_000}, "amount"),
        ({"balance": -1}, "balance"),
        ({"balance": 1_000_000_000}, "balance"),
        ({}, "amount"),
        ({"amount": 5, "description": ""}, "description"),
        ({"amount": 5, "description": "x" * 101}, "description"),
        ({"amount": 5.5}, "amount"),
    ],
)
async def test_adjust_validation_errors_name_the_field(
    emulator: WixEmulator, client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    """Out-of-range or malformed fields are 400 with a fieldViolation."""
    account = seed_one(emulator)
    response = await adjust(client, account["id"], revision=account["revision"], **body)
    assert response.status_code == 400
    violations = response.json()["details"]["validationError"]["fieldViolations"]
    assert violations[0]["field"] == field


@pytest.mark.anyio
async def test_adjust_below_zero_is_refused_with_the_negative_knobs(
    emulator: WixEmulator, client: httpx.AsyncClient
) -> None:
    """A result below 0 is refused: 400 + applicationError by default, status from the knob."""
    account = seed_one(emulator, balance=10)
    response = await adjust(client, account["id"], amount=-11, revision=account["revision"])
    assert response.status_code == 400
    assert response.json()["details"]["applicationError"]["code"] == "NEGATIVE_BALANCE"
    emulator.knobs.negative_status = 428
    emulator.knobs.negative_code = "FAILED_PRECONDITION"
    response = await adjust(client, account["id"], amount=-11, revision=account["revision"])
    assert response.status_code == 428
    assert response.json()["details"]["applicationError"]["code"] == "FAILED_PRECONDITION"
    ok = await adjust(client, account["id"], amount=-10, revision=account["revision"])
    assert ok.json()["account"]["points"]["balance"] == 0


@pytest.mark.anyio
async def test_adjust_while_program_not_active_follows_the_knob(
    emulator: WixEmulator, client: httpx.AsyncClient
) -> None:
    """Paused program: adjust refused by default; allowed with adjust_requires_active off."""
    account = seed_one(emulator)
    emulator.set_program_status("PAUSED")
    refused = await adjust(client, account["id"], amount=1, revision=account["revision"])
    assert refused.status_code == 428
    emulator.knobs.adjust_requires_active = False
    allowed = await adjust(client, account["id"], amount=1, revision=account["revision"])
    assert allowed.status_code == 200


@pytest.mark.anyio
async def test_adjust_without_revision_follows_the_knob(
    emulator: WixEmulator, client: httpx.AsyncClient
) -> None:
    """Omitted revision: applied by default ("accept"), 400 with "reject"."""
    account = seed_one(emulator)
    assert (await adjust(client, account["id"], amount=1)).status_code == 200
    emulator.knobs.adjust_without_revision = "reject"
    response = await adjust(client, account["id"], amount=1)
    assert response.status_code == 400
    fields = response.json()["details"]["validationError"]["fieldViolations"]
    assert fields[0]["field"] == "revision"


@pytest.mark.anyio
async def test_amount_adjust_can_be_recorded_as_give(
    emulator: WixEmulator, client: httpx.AsyncClient
) -> None:
    """The amount_adjust_type knob writes GIVE transactions (balance adjusts stay ADJUST)."""
    emulator.knobs.amount_adjust_type = "GIVE"
    account = seed_one(emulator)
    response = await adjust(client, account["id"], amount=3, revision=account["revision"])
    assert emulator.state.transaction(response.json()["transactionId"])["transactionType"] == "GIVE"


@pytest.mark.anyio
async def test_earn_is_idempotent_on_its_key(
    emulator: WixEmulator, client: httpx.AsyncClient
) -> None:
    """The same idempotencyKey returns the first transactionId and earns only once."""
    account = seed_one(emulator, balance=0)
    body = {"amount": 7, "appId": "app", "idempotencyKey": "k-1", "description": "order 1"}
    first = await client.post(f"{ACCOUNTS}/{account['id']}/earn-points", json=body)
    second = await client.post(f"{ACCOUNTS}/{account['id']}/earn-points", json=body)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert emulator.state.accounts[account["id"]].points == {
        "balance": 7,
        "earned": 7,
        "adjusted": 0,
        "redeemed": 0,
        "expired": 0,
    }
    tx = emulator.state.transaction(first.json()["transactionId"])
    assert tx["transactionType"] == "EARN" and tx["idempotencyKey"] == "k-1"
    assert tx["earnInfo"]["appId"] == "app"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        {"amount": 0, "appId": "a", "idempotencyKey": "k"},
        {"amount": -5, "appId": "a", "idempotencyKey": "k"},
        {"amount": 5, "idempotencyKey": "k"},
        {"amount": 5, "appId": "a"},
        {"amount": 5, "appId": "a", "idempotencyKey": "k" * 129},
    ],
)
async def test_earn_validation(
    emulator: WixEmulator, client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    """Earn needs a positive amount, an appId and an idempotencyKey of at most 128 chars."""
    account = seed_one(emulator)
    response = await client.post(f"{ACCOUNTS}/{account['id']}/earn-points", json=body)
    assert response.status_code == 400


@pytest.mark.anyio
async def test_earn_needs_an_active_program(
    emulator: WixEmulator, client: httpx.AsyncClient
) -> None:
    """Earn is refused while the program is paused."""
    account = seed_one(emulator)
    emulator.set_program_status("PAUSED")
    body = {"amount": 5, "appId": "a", "idempotencyKey": "k"}
    response = await client.post(f"{ACCOUNTS}/{account['id']}/earn-points", json=body)
    assert response.status_code == 428


@pytest.mark.anyio
async def test_program_totals_sum_every_account(
    emulator: WixEmulator, client: httpx.AsyncClient
) -> None:
    """program-totals sums points over accounts and counts them."""
    seed_one(emulator, balance=10)
    seed_one(emulator, balance=32)
    body = (await client.get(f"{ACCOUNTS}/program-totals")).json()
    assert body["points"]["balance"] == 42 and body["points"]["earned"] == 42
    assert body["tierTotals"] == [{"numberOfAccounts": 2}]
