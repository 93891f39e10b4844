"""The HubSpot emulator's front door: Bearer auth, correlation ids, the three rate limits
with their headers and 429 bodies, and injected faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import anyio
import httpx
import pytest

from connectors.hubspot.emulator import HubSpotEmulator
from tests.fakes import ManualClock

pytestmark = pytest.mark.anyio

TOKEN = "emulator-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POINTS = "wix_loyalty_points"
CONTACTS = "/crm/v3/objects/contacts"
SEARCH = f"{CONTACTS}/search"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2025, 3, 1, 23, 59, 0, tzinfo=UTC))


@pytest.fixture
def emulator(clock: ManualClock) -> HubSpotEmulator:
    return HubSpotEmulator(TOKEN, clock=clock)


@pytest.fixture
async def client(emulator: HubSpotEmulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(emulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hs", headers=AUTH) as http:
        yield http


@pytest.fixture
async def anonymous(emulator: HubSpotEmulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(emulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hs") as http:
        yield http


async def test_bearer_token_is_required(anonymous: httpx.AsyncClient) -> None:
    """No token or a wrong one is 401 INVALID_AUTHENTICATION in HubSpot's error body, whose
    correlationId is the answer's X-HubSpot-Correlation-Id."""
    missing = await anonymous.get(CONTACTS)
    wrong = await anonymous.get(CONTACTS, headers={"Authorization": "Bearer other"})
    for answer in (missing, wrong):
        assert answer.status_code == 401
        body = answer.json()
        assert (body["status"], body["category"]) == ("error", "INVALID_AUTHENTICATION")
        assert body["correlationId"] == answer.headers["X-HubSpot-Correlation-Id"]
    assert missing.json()["correlationId"] != wrong.json()["correlationId"]


async def test_expired_token_knob(emulator: HubSpotEmulator, client: httpx.AsyncClient) -> None:
    """token_expired makes every call 401 EXPIRED_AUTHENTICATION."""
    emulator.knobs.token_expired = True
    answer = await client.get(CONTACTS)
    assert answer.status_code == 401 and answer.json()["category"] == "EXPIRED_AUTHENTICATION"


async def test_rate_limit_headers_count_down(client: httpx.AsyncClient) -> None:
    """Every answer carries X-HubSpot-RateLimit-Max/-Remaining/-Interval-Milliseconds and
    -Daily/-Daily-Remaining, counting this request."""
    first = await client.get(CONTACTS)
    second = await client.get(f"{CONTACTS}/1")
    assert second.status_code == 404
    assert first.headers["X-HubSpot-RateLimit-Max"] == "100"
    assert first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert first.headers["X-HubSpot-RateLimit-Daily"] == "250000"
    remaining = [int(a.headers["X-HubSpot-RateLimit-Remaining"]) for a in (first, second)]
    daily = [int(a.headers["X-HubSpot-RateLimit-Daily-Remaining"]) for a in (first, second)]
    assert remaining == [99, 98] and daily == [249_999, 249_998]


async def test_ten_second_limit(
    emulator: HubSpotEmulator,
    client: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    clock: ManualClock,
) -> None:
    """Over requests_per_ten_seconds: 429 {"status": "error", "errorType": "RATE_LIMIT",
    "policyName": "SECONDLY"} without Retry-After; admin routes are never limited; the window
    rolls after 10 s."""
    emulator.knobs.requests_per_ten_seconds = 3
    assert [(await client.get(CONTACTS)).status_code for _ in range(3)] == [200, 200, 200]
    limited = await client.get(CONTACTS)
    assert limited.status_code == 429
    body = limited.json()
    assert (body["status"], body["errorType"], body["policyName"]) == (
        "error",
        "RATE_LIMIT",
        "SECONDLY",
    )
    assert body["message"] and body["correlationId"]
    assert "Retry-After" not in limited.headers
    assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert (await anonymous.get("/_sandbox/stats")).json()["rate_limited"] == 1
    clock.advance(10)
    assert (await client.get(CONTACTS)).status_code == 200


async def test_retry_after_knob(emulator: HubSpotEmulator, client: httpx.AsyncClient) -> None:
    """retry_after="computed" adds the seconds until a slot frees; an int is sent as is."""
    emulator.knobs.requests_per_ten_seconds = 1
    emulator.knobs.retry_after = "computed"
    await client.get(CONTACTS)
    assert (await client.get(CONTACTS)).headers["Retry-After"] == "10"
    emulator.knobs.retry_after = 3
    assert (await client.get(CONTACTS)).headers["Retry-After"] == "3"


async def test_daily_limit_resets_at_utc_midnight(
    emulator: HubSpotEmulator, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    """Over daily_limit: 429 policyName DAILY until the next UTC day."""
    emulator.knobs.daily_limit = 2
    assert [(await client.get(CONTACTS)).status_code for _ in range(2)] == [200, 200]
    clock.advance(30)
    refused = await client.get(CONTACTS)
    assert refused.status_code == 429 and refused.json()["policyName"] == "DAILY"
    assert refused.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    clock.advance(31)
    answer = await client.get(CONTACTS)
    assert answer.status_code == 200
    assert answer.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "1"


async def test_search_limit_per_second(
    emulator: HubSpotEmulator, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    """Search has its own limit (4 per second): the 5th search in a second is 429 SECONDLY
    while other routes still answer."""
    answers = [(await client.post(SEARCH, json={})).status_code for _ in range(5)]
    assert answers == [200, 200, 200, 200, 429]
    assert (await client.get(CONTACTS)).status_code == 200
    clock.advance(1)
    assert (await client.post(SEARCH, json={})).status_code == 200


async def test_error_before_apply_changes_nothing(
    emulator: HubSpotEmulator, client: httpx.AsyncClient
) -> None:
    """faults.error_rate answers 503 in HubSpot's body and applies nothing."""
    contact = emulator.seed_contacts([{"email": "f@example.com", "balance": 1}])[0]
    emulator.knobs.faults.error_rate = 1.0
    answer = await client.patch(f"{CONTACTS}/{contact['id']}", json={"properties": {POINTS: "2"}})
    assert answer.status_code == 503
    assert (answer.json()["status"], answer.json()["category"]) == ("error", "INTERNAL_ERROR")
    assert "X-HubSpot-RateLimit-Remaining" in answer.headers
    assert emulator.points(contact["id"]) == 1
    assert emulator.stats.dump()["faults"] == {"error_before_apply": 1}


async def test_failures_after_commit_keep_the_write(
    emulator: HubSpotEmulator, client: httpx.AsyncClient
) -> None:
    """fail_after_commit answers 500 with the write applied; timeout_after_commit applies,
    then hangs hang_seconds before answering."""
    contact = emulator.seed_contacts([{"email": "g@example.com", "balance": 1}])[0]
    url = f"{CONTACTS}/{contact['id']}"
    emulator.knobs.faults.fail_after_commit_rate = 1.0
    failed = await client.patch(url, json={"properties": {POINTS: "2"}})
    assert failed.status_code == 500 and emulator.points(contact["id"]) == 2
    emulator.knobs.faults.fail_after_commit_rate = 0.0
    emulator.knobs.faults.timeout_after_commit_rate = 1.0
    emulator.knobs.faults.hang_seconds = 5.0
    with anyio.move_on_after(0.2):
        await client.patch(url, json={"properties": {POINTS: "3"}})
        pytest.fail("the answer should hang")
    assert emulator.points(contact["id"]) == 3


async def test_unknown_route_is_hubspot_404(client: httpx.AsyncClient) -> None:
    """A path no route takes is a 404 in HubSpot's error body, with a correlation id."""
    answer = await client.get("/crm/v3/objects/widgets")
    assert answer.status_code == 404
    assert answer.json()["correlationId"] == answer.headers["X-HubSpot-Correlation-Id"]
