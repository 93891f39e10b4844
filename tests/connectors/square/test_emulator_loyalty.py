"""The Square emulator's Loyalty rules: idempotency, negative balances, the ledger, paging."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connectors.square.emulator import SquareEmulator
from tests.connectors.square.conftest import ManualClock

pytestmark = pytest.mark.anyio

ACCOUNTS = "/v2/loyalty/accounts"
EVENTS = "/v2/loyalty/events/search"


def adjust_body(key: str, points: int, reason: str = "syncd:op", **extra: Any) -> dict[str, Any]:
    return {"idempotency_key": key, "adjust_points": {"points": points, "reason": reason}, **extra}


def error_of(response: httpx.Response) -> dict[str, Any]:
    errors: list[dict[str, Any]] = response.json()["errors"]
    return errors[0]


async def test_same_key_same_body_replays_the_first_answer(
    emulator: SquareEmulator, client: httpx.AsyncClient
) -> None:
    """A repeated adjust (same key, same body) answers the first event and applies nothing."""
    account = emulator.seed_accounts([{"phone": "+14155550100", "balance": 10}])[0]
    path = f"{ACCOUNTS}/{account['id']}/adjust"
    first = await client.post(path, json=adjust_body("k-1", 5))
    again = await client.post(path, json=adjust_body("k-1", 5))
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert emulator.account(account["id"])["balance"] == 15
    stats = emulator.stats.dump()
    assert stats["applied_writes"] == {"k-1": 1} and stats["replayed_writes"] == {"k-1": 1}
    assert [e["type"] for e in emulator.events()].count("ADJUST_POINTS") == 2  # seed + one


async def test_same_key_other_body_is_idempotency_key_reused(
    emulator: SquareEmulator, client: httpx.AsyncClient
) -> None:
    """The same key with other points, or on another account, is 400 IDEMPOTENCY_KEY_REUSED."""
    one, two = emulator.seed_accounts([{"phone": "+14155550101"}, {"phone": "+14155550102"}])
    assert (
        await client.post(f"{ACCOUNTS}/{one['id']}/adjust", json=adjust_body("k", 5))
    ).is_success
    other_points = await client.post(f"{ACCOUNTS}/{one['id']}/adjust", json=adjust_body("k", 6))
    other_account = await client.post(f"{ACCOUNTS}/{two['id']}/adjust", json=adjust_body("k", 5))
    for refused in (other_points, other_account):
        assert refused.status_code == 400
        assert error_of(refused) == {
            "category": "INVALID_REQUEST_ERROR",
            "code": "IDEMPOTENCY_KEY_REUSED",
            "detail": error_of(refused)["detail"],
            "field": "idempotency_key",
        }
    assert emulator.account(one["id"])["balance"] == 5
    assert emulator.account(two["id"])["balance"] == 0


async def test_keys_are_forgotten_after_the_ttl_knob(
    emulator: SquareEmulator, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    """With idempotency_key_ttl_seconds set, a key older than that applies again."""
    emulator.knobs.idempotency_key_ttl_seconds = 60
    account = emulator.seed_accounts([{"phone": "+14155550103"}])[0]
    path = f"{ACCOUNTS}/{account['id']}/adjust"
    await client.post(path, json=adjust_body("k", 5))
    clock.advance(30)
    await client.post(path, json=adjust_body("k", 5))
    assert emulator.account(account["id"])["balance"] == 5
    clock.advance(31)
    await client.post(path, json=adjust_body("k", 5))
    assert emulator.account(account["id"])["balance"] == 10
    assert emulator.stats.dump()["applied_writes"] == {"k": 2}


async def test_negative_result_is_refused_unless_allowed(
    emulator: SquareEmulator, client: httpx.AsyncClient
) -> None:
    """Below zero: 400 BAD_REQUEST, not remembered; allow_negative_balance applies it."""
    account = emulator.seed_accounts([{"phone": "+14155550104", "balance": 10}])[0]
    path = f"{ACCOUNTS}/{account['id']}/adjust"
    refused = await client.post(path, json=adjust_body("k", -25))
    assert refused.status_code == 400
    assert error_of(refused)["code"] == "BAD_REQUEST"
    assert error_of(refused)["category"] == "INVALID_REQUEST_ERROR"
    assert emulator.account(account["id"])["balance"] == 10
    allowed = await client.post(path, json=adjust_body("k", -25, allow_negative_balance=True))
    assert allowed.status_code == 200
    assert emulator.account(account["id"])["balance"] == -15


async def test_negative_refusal_status_and_code_are_knobs(
    emulator: SquareEmulator, client: httpx.AsyncClient
) -> None:
    """negative_status / negative_code change how the refusal is answered."""
    emulator.knobs.negative_status = 409
    emulator.knobs.negative_code = "CONFLICT"
    account = emulator.seed_accounts([{"phone": "+14155550105"}])[0]
    refused = await client.post(f"{ACCOUNTS}/{account['id']}/adjust", json=adjust_body("k", -1))
    assert refused.status_code == 409 and error_of(refused)["code"] == "CONFLICT"


async def test_adjust_validates_its_body(
    emulator: SquareEmulator, client: httpx.AsyncClient
) -> None:
    """No key, zero points, a long reason, or an unknown account are refused."""
    account = emulator.seed_accounts([{"phone": "+14155550106"}])[0]
    path = f"{ACCOUNTS}/{account['id']}/adjust"
    no_key = await client.post(path, json={"adjust_points": {"points": 1}})
    zero = await client.post(path, json=adjust_body("k", 0))
    long_reason = await client.post(path, json=adjust_body("k2", 1, "x" * 3501))
    long_key = await client.post(path, json=adjust_body("k" * 129, 1))
    unknown = await client.post(f"{ACCOUNTS}/nope/adjust", json=adjust_body("k3", 1))
    assert error_of(no_key)["code"] == "MISSING_REQUIRED_PARAMETER"
    assert error_of(zero)["code"] == "BAD_REQUEST"
    assert error_of(long_reason)["code"] == "VALUE_TOO_LONG"
    assert error_of(long_key)["code"] == "VALUE_TOO_LONG"
    assert (unknown.status_code, error_of(unknown)["code"]) == (404, "NOT_FOUND")


async def test_every_change_writes_an_event_with_its_source(
    emulator: SquareEmulator, client: httpx.AsyncClient
) -> None:
    """API adjusts are LOYALTY_API; till sales, redemptions and dashboard edits are SQUARE."""
    account = emulator.seed_accounts([{"phone": "+14155550107"}])[0]
    await client.post(f"{ACCOUNTS}/{account['id']}/adjust", json=adjust_body("k", 200))
    emulator.activity(account["id"], "sale", 30)
    redeemed = emulator.activity(account["id"], "redeem", 100)
    emulator.activity(account["id"], "adjust", -150, reason="refund")
    ledger = [(e["type"], e["source"], e.get("location_id")) for e in emulator.events()]
    assert ledger == [
        ("ADJUST_POINTS", "LOYALTY_API", None),
        ("ACCUMULATE_POINTS", "SQUARE", "LSANDBOX0001"),
        ("CREATE_REWARD", "SQUARE", "LSANDBOX0001"),
        ("REDEEM_REWARD", "SQUARE", "LSANDBOX0001"),
        ("ADJUST_POINTS", "SQUARE", "LSANDBOX0001"),
    ]
    create_reward, redeem_reward = emulator.events()[2:4]
    assert create_reward["create_reward"]["points"] == -100
    assert (
        redeem_reward["redeem_reward"]["reward_id"] == create_reward["create_reward"]["reward_id"]
    )
    assert redeemed.event_ids == [create_reward["id"], redeem_reward["id"]]
    after = emulator.account(account["id"])
    assert (after["balance"], after["lifetime_points"]) == (-20, 230)
    assert "enrolled_at" in after


async def test_till_redemption_needs_the_points(emulator: SquareEmulator) -> None:
    """The till refuses to redeem more points than the balance."""
    account = emulator.seed_accounts([{"phone": "+14155550108", "balance": 50}])[0]
    with pytest.raises(Exception, match="BAD_REQUEST"):
        emulator.activity(account["id"], "redeem", 100)
    assert emulator.account(account["id"])["balance"] == 50


async def test_create_account_links_or_creates_the_customer(
    emulator: SquareEmulator, client: httpx.AsyncClient
) -> None:
    """Create links the customer with the phone, or makes one; it replays under its key."""
    known = emulator.seed_customer(email="kim@example.com", phone="+1 (415) 555-0110", name="Kim")
    body = {
        "loyalty_account": {
            "program_id": emulator.program_id,
            "mapping": {"phone_number": "+14155550110"},
        },
        "idempotency_key": "create-1",
    }
    created = await client.post(ACCOUNTS, json=body)
    replay = await client.post(ACCOUNTS, json=body)
    assert created.status_code == 200 and created.json() == replay.json()
    account = created.json()["loyalty_account"]
    assert account["customer_id"] == known["id"]
    assert account["balance"] == 0 and account["mapping"]["phone_number"] == "+14155550110"
    fresh = await client.post(
        ACCOUNTS,
        json={
            "loyalty_account": {
                "program_id": emulator.program_id,
                "mapping": {"phone_number": "+14155550111"},
            },
            "idempotency_key": "create-2",
        },
    )
    made = [
        c for c in emulator.customers() if c["id"] == fresh.json()["loyalty_account"]["customer_id"]
    ]
    assert made[0]["phone_number"] == "+14155550111" and made[0]["creation_source"] == "LOYALTY"
    assert len(emulator.accounts()) == 2


async def test_create_account_refusals(emulator: SquareEmulator, client: httpx.AsyncClient) -> None:
    """A taken phone is 409 CONFLICT; a bad phone, program or missing key are refused."""
    emulator.seed_accounts([{"phone": "+14155550112"}])

    def body(phone: str, program: str | None = None, key: str | None = "k") -> dict[str, Any]:
        mapping = {"program_id": program or emulator.program_id, "mapping": {"phone_number": phone}}
        return {"loyalty_account": mapping} | ({"idempotency_key": key} if key else {})

    taken = await client.post(ACCOUNTS, json=body("+14155550112"))
    bad_phone = await client.post(ACCOUNTS, json=body("415-555-0113", key="k2"))
    bad_program = await client.post(ACCOUNTS, json=body("+14155550113", program="nope", key="k3"))
    no_key = await client.post(ACCOUNTS, json=body("+14155550113", key=None))
    assert (taken.status_code, error_of(taken)["code"]) == (409, "CONFLICT")
    assert (bad_phone.status_code, error_of(bad_phone)["code"]) == (400, "INVALID_PHONE_NUMBER")
    assert (bad_program.status_code, error_of(bad_program)["code"]) == (404, "NOT_FOUND")
    assert error_of(no_key)["code"] == "MISSING_REQUIRED_PARAMETER"


async def test_program_by_main_and_by_id(
    emulator: SquareEmulator, client: httpx.AsyncClient
) -> None:
    """The one program answers as `main` and by its id; other ids are 404."""
    main = (await client.get("/v2/loyalty/programs/main")).json()["program"]
    by_id = (await client.get(f"/v2/loyalty/programs/{main['id']}")).json()["program"]
    listed = (await client.get("/v2/loyalty/programs")).json()["programs"]
    assert main == by_id == listed[0] and main["id"] == emulator.program_id
    assert main["status"] == "ACTIVE"
    assert (await client.get("/v2/loyalty/programs/other")).status_code == 404


async def test_accounts_search_pages_oldest_first(
    emulator: SquareEmulator, client: httpx.AsyncClient
) -> None:
    """No query lists every account oldest first, page by page; limit is 1..200."""
    seeded = emulator.seed_accounts(45)
    seen: list[str] = []
    cursor = None
    while True:
        body: dict[str, Any] = {"limit": 20} | ({"cursor": cursor} if cursor else {})
        page = (await client.post(f"{ACCOUNTS}/search", json=body)).json()
        seen += [a["id"] for a in page["loyalty_accounts"]]
        cursor = page.get("cursor")
        if not cursor:
            break
    assert seen == [a["id"] for a in seeded]
    default = (await client.post(f"{ACCOUNTS}/search", json={})).json()
    assert len(default["loyalty_accounts"]) == 30 and "cursor" in default
    too_big = await client.post(f"{ACCOUNTS}/search", json={"limit": 201})
    assert error_of(too_big)["code"] == "VALUE_TOO_HIGH"


async def test_accounts_search_by_phone_or_customer(
    emulator: SquareEmulator, client: httpx.AsyncClient
) -> None:
    """`mappings` match phones, `customer_ids` match customers; both at once is refused."""
    one, two, _three = emulator.seed_accounts(3)
    by_phone = await client.post(
        f"{ACCOUNTS}/search",
        json={"query": {"mappings": [{"phone_number": one["mapping"]["phone_number"]}]}},
    )
    by_customer = await client.post(
        f"{ACCOUNTS}/search",
        json={"query": {"customer_ids": [one["customer_id"], two["customer_id"]]}},
    )
    nothing = await client.post(f"{ACCOUNTS}/search", json={"query": {"customer_ids": ["x"]}})
    both = await client.post(
        f"{ACCOUNTS}/search",
        json={"query": {"customer_ids": ["x"], "mappings": [{"phone_number": "+14155550001"}]}},
    )
    assert [a["id"] for a in by_phone.json()["loyalty_accounts"]] == [one["id"]]
    assert [a["id"] for a in by_customer.json()["loyalty_accounts"]] == [one["id"], two["id"]]
    assert nothing.json() == {}
    assert both.status_code == 400


async def test_events_search_newest_first_with_stable_cursor(
    emulator: SquareEmulator, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    """Events come newest first, at most 30 a page; events added meanwhile do not shift pages."""
    account = emulator.seed_accounts([{"phone": "+14155550120"}])[0]
    for _ in range(70):
        clock.advance(1)
        emulator.activity(account["id"], "sale", 1)
    ledger = [e["id"] for e in emulator.events()]
    query = {"query": {"filter": {"loyalty_account_filter": {"loyalty_account_id": account["id"]}}}}
    first = (await client.post(EVENTS, json=query)).json()
    assert len(first["events"]) == 30
    clock.advance(1)
    emulator.activity(account["id"], "sale", 1)  # newer than every page: must not shift them
    seen = [e["id"] for e in first["events"]]
    cursor = first["cursor"]
    while cursor:
        page = (await client.post(EVENTS, json=query | {"cursor": cursor})).json()
        seen += [e["id"] for e in page["events"]]
        cursor = page.get("cursor")
    assert seen == list(reversed(ledger))
    assert (
        error_of(await client.post(EVENTS, json=query | {"limit": 31}))["code"] == "VALUE_TOO_HIGH"
    )
    other = await client.post(EVENTS, json={"cursor": first["cursor"]})
    assert error_of(other)["code"] == "INVALID_CURSOR"


async def test_events_search_filters_by_type_and_time(
    emulator: SquareEmulator, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    """type_filter and a created_at range (start inclusive, end exclusive) narrow the ledger."""
    account = emulator.seed_accounts([{"phone": "+14155550121"}])[0]
    emulator.activity(account["id"], "sale", 5)
    clock.advance(10)
    start = emulator.state.stamp(clock())
    emulator.activity(account["id"], "adjust", 3)
    clock.advance(10)
    end = emulator.state.stamp(clock())
    emulator.activity(account["id"], "adjust", 4)
    window = {"date_time_filter": {"created_at": {"start_at": start, "end_at": end}}}
    found = (await client.post(EVENTS, json={"query": {"filter": window}})).json()["events"]
    assert [e["adjust_points"]["points"] for e in found] == [3]
    adjusts = {"type_filter": {"types": ["ADJUST_POINTS"]}}
    found = (await client.post(EVENTS, json={"query": {"filter": adjusts}})).json()["events"]
    assert [e["adjust_points"]["points"] for e in found] == [4, 3]
    bad = await client.post(EVENTS, json={"query": {"filter": {"type_filter": {"types": ["X"]}}}})
    assert error_of(bad)["code"] == "INVALID_ENUM_VALUE"
