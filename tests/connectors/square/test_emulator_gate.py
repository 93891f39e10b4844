"""The Square emulator's front door: Bearer auth, rate limit with Retry-After, injected faults."""

from __future__ import annotations

import time

import httpx
import pytest

from connectors.square.emulator import SquareEmulator
from tests.connectors.square.conftest import ManualClock, ScriptedRandom

pytestmark = pytest.mark.anyio

PROGRAM = "/v2/loyalty/programs/main"


def adjust(key: str, points: int) -> dict[str, object]:
    return {"idempotency_key": key, "adjust_points": {"points": points, "reason": "r"}}


async def test_bearer_token_is_required(emulator: SquareEmulator, admin: httpx.AsyncClient) -> None:
    """No token or a wrong one is 401 UNAUTHORIZED (AUTHENTICATION_ERROR)."""
    missing = await admin.get(PROGRAM)
    wrong = await admin.get(PROGRAM, headers={"Authorization": "Bearer other"})
    for answer in (missing, wrong):
        assert answer.status_code == 401
        error = answer.json()["errors"][0]
        assert (error["category"], error["code"]) == ("AUTHENTICATION_ERROR", "UNAUTHORIZED")
    assert "x-request-id" in missing.headers


async def test_expired_token_knob(emulator: SquareEmulator, client: httpx.AsyncClient) -> None:
    """token_expired makes every call 401 ACCESS_TOKEN_EXPIRED."""
    emulator.knobs.token_expired = True
    answer = await client.get(PROGRAM)
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["code"] == "ACCESS_TOKEN_EXPIRED"


async def test_rate_limit_is_429_rate_limited_without_retry_after_by_default(
    emulator: SquareEmulator,
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    clock: ManualClock,
) -> None:
    """Over requests_per_minute: 429 RATE_LIMITED (RATE_LIMIT_ERROR), no Retry-After; admin
    routes are never limited; the window slides."""
    emulator.knobs.requests_per_minute = 3
    assert [(await client.get(PROGRAM)).status_code for _ in range(3)] == [200, 200, 200]
    limited = await client.get(PROGRAM)
    assert limited.status_code == 429 and "Retry-After" not in limited.headers
    error = limited.json()["errors"][0]
    assert (error["category"], error["code"]) == ("RATE_LIMIT_ERROR", "RATE_LIMITED")
    assert (await admin.get("/_sandbox/accounts")).status_code == 200
    clock.advance(60)
    assert (await client.get(PROGRAM)).status_code == 200
    assert emulator.stats.rate_limited == 1


async def test_retry_after_knob_computed_or_fixed(
    emulator: SquareEmulator, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    """retry_after "computed" sends the seconds until a slot frees; an int sends that value."""
    emulator.knobs.requests_per_minute = 1
    emulator.knobs.retry_after = "computed"
    await client.get(PROGRAM)
    clock.advance(45)
    assert (await client.get(PROGRAM)).headers["Retry-After"] == "15"
    emulator.knobs.retry_after = 7
    assert (await client.get(PROGRAM)).headers["Retry-After"] == "7"


async def test_error_before_apply_changes_nothing(
    emulator: SquareEmulator, client: httpx.AsyncClient
) -> None:
    """faults.error_rate answers 503 SERVICE_UNAVAILABLE (API_ERROR) and applies nothing."""
    account = emulator.seed_accounts([{"phone": "+14155550130"}])[0]
    emulator.knobs.faults.error_rate = 1.0
    failed = await client.post(f"/v2/loyalty/accounts/{account['id']}/adjust", json=adjust("k", 5))
    assert failed.status_code == 503
    error = failed.json()["errors"][0]
    assert (error["category"], error["code"]) == ("API_ERROR", "SERVICE_UNAVAILABLE")
    assert emulator.account(account["id"])["balance"] == 0
    assert emulator.stats.faults["error_before_apply"] == 1


async def test_fail_after_commit_applies_then_the_retry_replays(
    emulator: SquareEmulator, client: httpx.AsyncClient
) -> None:
    """fail_after_commit answers 500 once the change is applied; resending the key replays it."""
    account = emulator.seed_accounts([{"phone": "+14155550131"}])[0]
    emulator.knobs.faults.fail_after_commit_rate = 0.5
    emulator.knobs.faults.rng = ScriptedRandom([0.0])  # the first answer fails, then none
    path = f"/v2/loyalty/accounts/{account['id']}/adjust"
    failed = await client.post(path, json=adjust("k", 5))
    assert failed.status_code == 500
    assert failed.json()["errors"][0]["code"] == "INTERNAL_SERVER_ERROR"
    assert emulator.account(account["id"])["balance"] == 5
    retried = await client.post(path, json=adjust("k", 5))
    assert retried.status_code == 200
    assert retried.json()["event"]["id"] == emulator.events()[-1]["id"]
    assert emulator.account(account["id"])["balance"] == 5
    assert emulator.stats.dump()["applied_writes"] == {"k": 1}


async def test_hang_after_commit_and_latency(
    emulator: SquareEmulator, client: httpx.AsyncClient
) -> None:
    """timeout_after_commit answers late (after hang_seconds), with the change applied;
    latency_ms delays every request."""
    account = emulator.seed_accounts([{"phone": "+14155550132"}])[0]
    faults = emulator.knobs.faults
    faults.timeout_after_commit_rate, faults.hang_seconds, faults.latency_ms = 1.0, 0.2, 50
    started = time.monotonic()
    answer = await client.post(f"/v2/loyalty/accounts/{account['id']}/adjust", json=adjust("k", 5))
    assert answer.status_code == 200 and time.monotonic() - started >= 0.25
    assert emulator.account(account["id"])["balance"] == 5
    assert emulator.stats.faults["timeout_after_commit"] == 1


async def test_unknown_routes_answer_square_errors(client: httpx.AsyncClient) -> None:
    """An unknown path is a Square-shaped 404; a bad JSON body is 400 EXPECTED_JSON_BODY."""
    missing = await client.get("/v2/nothing")
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "NOT_FOUND"
    bad = await client.post("/v2/loyalty/accounts/search", content=b"{not json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "EXPECTED_JSON_BODY"
