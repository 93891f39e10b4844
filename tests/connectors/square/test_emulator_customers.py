"""The Square emulator's Customers routes: search (with its lag), bulk retrieve, create, get."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connectors.square.emulator import SquareEmulator
from tests.connectors.square.conftest import ManualClock

pytestmark = pytest.mark.anyio

SEARCH = "/v2/customers/search"


def by_email(email: str) -> dict[str, Any]:
    return {"query": {"filter": {"email_address": {"exact": email}}}}


async def test_search_by_exact_email_ignores_case(
    emulator: SquareEmulator, client: httpx.AsyncClient
) -> None:
    """email_address.exact matches whatever the case; several customers may share an email."""
    one = emulator.seed_customer(email="Pat@Example.com", name="Pat One")
    two = emulator.seed_customer(email="pat@example.com", name="Pat Two")
    emulator.seed_customer(email="patricia@example.com")
    found = (await client.post(SEARCH, json=by_email("PAT@example.COM"))).json()["customers"]
    assert sorted(c["id"] for c in found) == sorted([one["id"], two["id"]])
    assert (await client.post(SEARCH, json=by_email("nobody@example.com"))).json() == {}


async def test_search_by_exact_phone_compares_e164(
    emulator: SquareEmulator, client: httpx.AsyncClient
) -> None:
    """phone_number.exact matches stored numbers in any format once made E.164."""
    stored = emulator.seed_customer(phone="(415) 555-0199", name="Lou")
    query = {"query": {"filter": {"phone_number": {"exact": "+14155550199"}}}}
    found = (await client.post(SEARCH, json=query)).json()["customers"]
    assert [c["id"] for c in found] == [stored["id"]]


async def test_search_pages_with_a_cursor(
    emulator: SquareEmulator, client: httpx.AsyncClient
) -> None:
    """Search pages by `limit` (1..100) and a cursor, each customer once, by name."""
    for i in range(25):
        emulator.seed_customer(email=f"c{i:02d}@example.com", name=f"Name{i:02d} X")
    seen: list[str] = []
    body: dict[str, Any] = {"limit": 10}
    while True:
        page = (await client.post(SEARCH, json=body)).json()
        seen += [c["given_name"] for c in page["customers"]]
        if "cursor" not in page:
            break
        body = {"limit": 10, "cursor": page["cursor"]}
    assert seen == [f"Name{i:02d}" for i in range(25)]
    too_big = await client.post(SEARCH, json={"limit": 101})
    assert too_big.json()["errors"][0]["code"] == "VALUE_TOO_HIGH"


async def test_new_customers_reach_search_after_the_lag(
    emulator: SquareEmulator, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    """With customer_search_lag_seconds, a created customer is found by get at once and by
    search only after the lag."""
    emulator.knobs.customer_search_lag_seconds = 20
    created = await client.post("/v2/customers", json={"email_address": "late@example.com"})
    customer = created.json()["customer"]
    assert (await client.get(f"/v2/customers/{customer['id']}")).status_code == 200
    assert (await client.post(SEARCH, json=by_email("late@example.com"))).json() == {}
    clock.advance(20)
    found = (await client.post(SEARCH, json=by_email("late@example.com"))).json()["customers"]
    assert [c["id"] for c in found] == [customer["id"]]


async def test_bulk_retrieve_answers_each_id(
    emulator: SquareEmulator, client: httpx.AsyncClient
) -> None:
    """Bulk retrieve maps each id to {"customer"} or {"errors"}; 1..100 ids."""
    known = emulator.seed_customer(email="a@example.com")
    answer = await client.post(
        "/v2/customers/bulk-retrieve", json={"customer_ids": [known["id"], "GONE"]}
    )
    responses = answer.json()["responses"]
    assert responses[known["id"]]["customer"]["email_address"] == "a@example.com"
    assert responses["GONE"]["errors"][0]["code"] == "NOT_FOUND"
    too_many = await client.post("/v2/customers/bulk-retrieve", json={"customer_ids": ["x"] * 101})
    empty = await client.post("/v2/customers/bulk-retrieve", json={"customer_ids": []})
    assert too_many.status_code == empty.status_code == 400


async def test_create_customer_validates_and_replays(
    emulator: SquareEmulator, client: httpx.AsyncClient
) -> None:
    """Create needs a name, email or phone, checks them, and replays under its key."""
    body = {"idempotency_key": "cust-1", "email_address": "new@example.com", "given_name": "New"}
    first = await client.post("/v2/customers", json=body)
    again = await client.post("/v2/customers", json=body)
    assert first.json() == again.json() and len(emulator.customers()) == 1
    assert first.json()["customer"]["creation_source"] == "THIRD_PARTY"
    empty = await client.post("/v2/customers", json={"note": "no name"})
    bad_email = await client.post("/v2/customers", json={"email_address": "nope"})
    bad_phone = await client.post("/v2/customers", json={"phone_number": "12"})
    assert empty.json()["errors"][0]["code"] == "BAD_REQUEST"
    assert bad_email.json()["errors"][0]["code"] == "INVALID_EMAIL_ADDRESS"
    assert bad_phone.json()["errors"][0]["code"] == "INVALID_PHONE_NUMBER"
    missing = await client.get("/v2/customers/NOPE")
    assert (missing.status_code, missing.json()["errors"][0]["code"]) == (404, "NOT_FOUND")
