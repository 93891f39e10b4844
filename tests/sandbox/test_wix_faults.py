"""Rate limit and injected faults on the Wix emulator's API routes."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest

from syncd.sandbox.wix import WixEmulator
from tests.sandbox.conftest import ManualClock, seed_one

PROGRAM = "/loyalty-programs/v1/program"
ACCOUNTS = "/loyalty-accounts/v1/accounts"


@pytest.mark.anyio
async def test_rate_limit_answers_429_with_computed_retry_after(
    emulator: WixEmulator, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    """Over the per-minute budget: 429 with Retry-After = seconds until a slot frees."""
    emulator.knobs.requests_per_minute = 3
    statuses = [(await client.get(PROGRAM)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = await client.get(PROGRAM)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "60"
    assert limited.json()["details"]["applicationError"]["code"] == "TOO_MANY_REQUESTS"
    clock.advance(45)
    assert (await client.get(PROGRAM)).headers["Retry-After"] == "15"
    clock.advance(15)
    assert (await client.get(PROGRAM)).status_code == 200
    assert emulator.stats.rate_limited == 2


@pytest.mark.anyio
async def test_retry_after_can_be_fixed_or_omitted(
    emulator: WixEmulator, client: httpx.AsyncClient
) -> None:
    """retry_after None sends no header; an int sends that value."""
    emulator.knobs.requests_per_minute = 1
    await client.get(PROGRAM)
    emulator.knobs.retry_after = None
    omitted = await client.get(PROGRAM)
    assert omitted.status_code == 429 and "Retry-After" not in omitted.headers
    emulator.knobs.retry_after = 7
    assert (await client.get(PROGRAM)).headers["Retry-After"] == "7"


@pytest.mark.anyio
async def test_default_budget_is_200_per_minute_and_admin_is_exempt(
    emulator: WixEmulator, client: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    """The 201st API call in a minute is limited; admin calls never are."""
    for _ in range(200):
        assert (await client.get(PROGRAM)).status_code == 200
    assert (await client.get(PROGRAM)).status_code == 429
    assert (await admin.get("/_sandbox/accounts")).status_code == 200


@pytest.mark.anyio
async def test_error_before_apply_changes_nothing(
    emulator: WixEmulator, client: httpx.AsyncClient
) -> None:
    """error_rate 1: every call is a 503 with an empty body and nothing is applied."""
    account = seed_one(emulator, balance=10)
    emulator.knobs.faults.error_rate = 1.0
    response = await client.post(
        f"{ACCOUNTS}/{account['id']}/adjust-points",
        json={"amount": 5, "revision": account["revision"]},
    )
    assert response.status_code == 503 and response.content == b""
    assert emulator.state.accounts[account["id"]].points["balance"] == 10
    assert emulator.stats.faults["error_before_apply"] == 1


@pytest.mark.anyio
async def test_fail_after_commit_applies_then_answers_500(
    emulator: WixEmulator, client: httpx.AsyncClient
) -> None:
    """fail_after_commit_rate 1: the adjust is applied and its transaction written, yet 500."""
    account = seed_one(emulator, balance=10)
    emulator.knobs.faults.fail_after_commit_rate = 1.0
    response = await client.post(
        f"{ACCOUNTS}/{account['id']}/adjust-points",
        json={"amount": 5, "revision": account["revision"], "description": "syncd:op-9"},
    )
    assert response.status_code == 500
    assert emulator.state.accounts[account["id"]].points["balance"] == 15
    assert emulator.state.all_transactions()[-1]["description"] == "syncd:op-9"


@pytest.mark.anyio
async def test_timeout_after_commit_applies_then_hangs(
    emulator: WixEmulator, client: httpx.AsyncClient
) -> None:
    """timeout_after_commit_rate 1: the change is applied, the answer hangs past the client."""
    account = seed_one(emulator, balance=10)
    emulator.knobs.faults.timeout_after_commit_rate = 1.0
    emulator.knobs.faults.hang_seconds = 30
    with anyio.move_on_after(0.2) as scope:
        await client.post(
            f"{ACCOUNTS}/{account['id']}/adjust-points",
            json={"amount": 5, "revision": account["revision"]},
        )
    assert scope.cancelled_caught
    assert emulator.state.accounts[account["id"]].points["balance"] == 15
    assert emulator.stats.faults["timeout_after_commit"] == 1


@pytest.mark.anyio
async def test_short_hang_still_answers(emulator: WixEmulator, client: httpx.AsyncClient) -> None:
    """After hang_seconds the normal answer is sent; reads (GET) never hang after commit."""
    emulator.knobs.faults.timeout_after_commit_rate = 1.0
    emulator.knobs.faults.hang_seconds = 0.1
    started = time.monotonic()
    response = await client.post(f"{ACCOUNTS}/query", json={"query": {}})
    assert response.status_code == 200 and time.monotonic() - started >= 0.1
    started = time.monotonic()
    assert (await client.get(PROGRAM)).status_code == 200
    assert time.monotonic() - started < 0.1


@pytest.mark.anyio
async def test_latency_is_added_to_every_call(
    emulator: WixEmulator, client: httpx.AsyncClient
) -> None:
    """latency_ms delays each API answer."""
    emulator.knobs.faults.latency_ms = 120
    started = time.monotonic()
    assert (await client.get(PROGRAM)).status_code == 200
    assert time.monotonic() - started >= 0.12


@pytest.mark.anyio
async def test_fault_sequence_repeats_with_the_seed(admin: httpx.AsyncClient) -> None:
    """Re-seeding through the admin route replays the same faults."""
    headers = {
        "Authorization": "test-api-key",
        "wix-site-id": "11111111-2222-4333-8444-555555555555",
    }

    async def run() -> list[int]:
        await admin.patch("/_sandbox/knobs", json={"seed": 42, "faults": {"error_rate": 0.5}})
        return [(await admin.get(PROGRAM, headers=headers)).status_code for _ in range(20)]

    first, second = await run(), await run()
    assert first == second and {200, 503} == set(first)
