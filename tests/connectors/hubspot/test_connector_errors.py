"""HubSpot answers mapped into syncd's error tree, as the connector raises them."""

from __future__ import annotations

import httpx
import pytest

from connectors.base import ReadBack
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.emulator import HubSpotEmulator
from connectors.hubspot.mapping import raise_for_response
from syncd.errors import (
    DuplicateError,
    FatalError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    RetriableError,
    SkipError,
)
from syncd.sandbox.server import RunningServer
from tests.connectors.hubspot.conftest import (
    connect,
    hubspot_settings,
)
from tests.fakes import FakeTime, ManualClock

pytestmark = pytest.mark.anyio
GET = "GET /crm/v3/objects/contacts/{contact_id}"


async def test_wrong_token_is_fatal(emulator: HubSpotEmulator, fake_time: FakeTime) -> None:
    """401 INVALID_AUTHENTICATION: FatalError naming the access token, with the correlation id."""
    async with connect(emulator, fake_time, access_token="wrong") as hubspot:
        with pytest.raises(FatalError) as fatal:
            await hubspot.get_account("1001")
    assert (fatal.value.status, fatal.value.code) == (401, "INVALID_AUTHENTICATION")
    assert "connectors.crm.access_token" in str(fatal.value) and fatal.value.request_id
    assert emulator.stats.dump()["requests"][GET] == 1  # not retried


async def test_expired_token_is_fatal(hubspot: HubSpotConnector, emulator: HubSpotEmulator) -> None:
    """401 EXPIRED_AUTHENTICATION (an OAuth token's 30 minutes are over): FatalError."""
    emulator.knobs.token_expired = True
    with pytest.raises(FatalError) as fatal:
        await hubspot.find_accounts("email", "a@example.com")
    assert fatal.value.code == "EXPIRED_AUTHENTICATION"


async def test_taken_email_is_duplicate_with_the_existing_id(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator
) -> None:
    """409 "Contact already exists. Existing ID: n": DuplicateError carrying n."""
    [contact] = emulator.seed_contacts([{"email": "taken@example.com"}])
    with pytest.raises(DuplicateError) as taken:
        await hubspot.client.create_contact({"email": "taken@example.com"})
    assert (taken.value.status, taken.value.code) == (409, "CONFLICT")
    assert taken.value.existing_id == contact["id"]


async def test_invalid_value_is_a_skip_with_hubspots_message(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator
) -> None:
    """400 VALIDATION_ERROR: SkipError carrying HubSpot's message and category."""
    [contact] = emulator.seed_contacts(1)
    with pytest.raises(SkipError) as refused:
        await hubspot.client.update_contact(contact["id"], {"wix_loyalty_points": "many"})
    assert (refused.value.status, refused.value.code) == (400, "VALIDATION_ERROR")
    assert refused.value.message and refused.value.account == contact["id"]


async def test_ten_second_limit_waits_out_the_window(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator, fake_time: FakeTime
) -> None:
    """429 SECONDLY with the window spent: the budget pauses the 10 s interval the headers
    give, after which the retry goes through."""
    [contact] = emulator.seed_contacts(1)
    emulator.knobs.requests_per_ten_seconds = 1
    await hubspot.get_account(contact["id"])
    started = fake_time.now
    await hubspot.get_account(contact["id"])
    assert fake_time.now - started >= 10
    assert hubspot.client.rate_limited == 1 and emulator.stats.rate_limited == 1


async def test_search_limit_waits_a_second(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator, fake_time: FakeTime
) -> None:
    """429 SECONDLY from search's own limit (the 10 s window not spent): a one-second pause."""
    emulator.knobs.requests_per_ten_seconds = 100
    emulator.knobs.search_requests_per_second = 1
    await hubspot.find_accounts("phone", "+14155550100")
    started = fake_time.now
    await hubspot.find_accounts("phone", "+14155550100")
    assert 1 <= fake_time.now - started < 10 and hubspot.client.rate_limited == 1


async def test_daily_limit_is_rate_limited_for_an_hour(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator, fake_time: FakeTime
) -> None:
    """429 DAILY outlasts every retry: RateLimitedError code DAILY, an hour's wait, and a
    message saying when the limit resets."""
    [contact] = emulator.seed_contacts(1)
    emulator.knobs.daily_limit = 1  # spent already: prepare() made three calls
    started = fake_time.now
    with pytest.raises(RateLimitedError) as limited:
        await hubspot.get_account(contact["id"])
    assert (limited.value.status, limited.value.code) == (429, "DAILY")
    assert limited.value.retry_after == 3600.0 and "midnight" in limited.value.message
    assert hubspot.client.rate_limited == 5 and fake_time.now - started >= 4 * 3600


async def test_server_errors_retry_reads_and_leave_writes_unknown(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator
) -> None:
    """503 on every try: a read ends RetriableError after 5 tries; a PATCH is sent once and
    is OutcomeUnknownError (HubSpot dedupes nothing)."""
    [contact] = emulator.seed_contacts(1)
    emulator.knobs.faults.error_rate = 1.0
    with pytest.raises(RetriableError) as read:
        await hubspot.get_account(contact["id"])
    assert (read.value.status, read.value.code) == (503, "INTERNAL_ERROR")
    assert not isinstance(read.value, OutcomeUnknownError)
    assert emulator.stats.dump()["requests"][GET] == 5
    with pytest.raises(OutcomeUnknownError) as write:
        await hubspot.client.update_contact(contact["id"], {"wix_loyalty_points": "1"})
    assert write.value.status == 503 and write.value.account == contact["id"]
    patch = "PATCH /crm/v3/objects/contacts/{contact_id}"
    assert emulator.stats.dump()["requests"][patch] == 1


async def test_lost_answer_to_a_write_is_unknown_and_read_back_finds_it(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator, clock: ManualClock
) -> None:
    """The PATCH is applied and answered 500: OutcomeUnknownError at once, the points moved
    once, read_back APPLIED with the remote id, and the same key again writes nothing."""
    [contact] = emulator.seed_contacts([{"email": "a@example.com", "balance": 50}])
    emulator.knobs.faults.fail_after_commit_rate = 1.0  # writes only: the read answers
    with pytest.raises(OutcomeUnknownError) as unknown:
        await hubspot.apply_delta(contact["id"], 7, key="op-3", reason="syncd:op-3")
    assert unknown.value.status == 500 and unknown.value.account == contact["id"]
    assert emulator.points(contact["id"]) == 57
    found = await hubspot.read_back(contact["id"], key="op-3", since=clock())
    assert (found.outcome, found.remote_id) == (ReadBack.APPLIED, "op-3:57")
    again = await hubspot.apply_delta(contact["id"], 7, key="op-3", reason="syncd:op-3")
    assert again.remote_id == "op-3:57" and emulator.points(contact["id"]) == 57


async def test_write_timing_out_after_commit_is_unknown_then_applied(
    emulator: HubSpotEmulator, served: RunningServer, clock: ManualClock
) -> None:
    """On a real socket: the PATCH lands and the answer hangs past the client's timeout;
    OutcomeUnknownError, and read_back proves it APPLIED."""
    [contact] = emulator.seed_contacts([{"email": "a@example.com", "balance": 5}])
    settings = hubspot_settings(served.url, timeout_seconds=0.3)
    async with HubSpotConnector(settings) as hubspot:
        await hubspot.prepare()
        faults = emulator.knobs.faults
        faults.timeout_after_commit_rate, faults.hang_seconds = 1.0, 1.0  # the write hangs
        with pytest.raises(OutcomeUnknownError):
            await hubspot.apply_delta(contact["id"], 2, key="op-t", reason="syncd:op-t")
        found = await hubspot.read_back(contact["id"], key="op-t", since=clock())
    assert found.outcome is ReadBack.APPLIED and emulator.points(contact["id"]) == 7


async def test_unreachable_write_is_not_unknown() -> None:
    """Nothing listening: the write cannot have been sent, so it is RetriableError."""
    async with HubSpotConnector(hubspot_settings("http://127.0.0.1:9")) as hubspot:
        with pytest.raises(RetriableError) as down:
            await hubspot.client.update_contact("1", {"wix_loyalty_points": "1"})
    assert not isinstance(down.value, OutcomeUnknownError)
    assert "base_url" in str(down.value)


def error_body(category: str, message: str = "why") -> dict[str, object]:
    return {"status": "error", "message": message, "correlationId": "c-1", "category": category}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, error_body("VALIDATION_ERROR"), SkipError),
        (404, error_body("OBJECT_NOT_FOUND"), NotFoundError),
        (409, error_body("CONFLICT", "Contact already exists. Existing ID: 42"), DuplicateError),
        (415, error_body("UNSUPPORTED_MEDIA_TYPE"), SkipError),
        (500, error_body("INTERNAL_ERROR"), RetriableError),
        (502, {}, RetriableError),
    ],
)
def test_raise_for_response_table(
    status: int, body: dict[str, object], expected: type[Exception]
) -> None:
    """Each status lands on its branch of the tree, carrying category and correlation id."""
    response = httpx.Response(status, json=body, headers={"x-hubspot-correlation-id": "h-1"})
    with pytest.raises(expected) as raised:
        raise_for_response(response, remote="crm", account="7")
    error = raised.value
    assert type(error) is expected and "account=7" in str(error)
    assert getattr(error, "request_id", None) == ("c-1" if body else "h-1")
    if expected is DuplicateError:
        assert getattr(error, "existing_id", None) == "42"


def test_missing_scopes_name_the_scope_to_grant() -> None:
    """403 MISSING_SCOPES: FatalError naming the scopes HubSpot lists, or else the one the
    call needs by its method and path."""
    listed = {
        "status": "error",
        "message": "This app hasn't been granted all required scopes to make this call.",
        "category": "MISSING_SCOPES",
        "errors": [
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": ["crm.objects.contacts.write"]},
            }
        ],
    }
    with pytest.raises(FatalError) as fatal:
        raise_for_response(httpx.Response(403, json=listed), remote="crm")
    assert "grant the scope crm.objects.contacts.write" in str(fatal.value)
    assert fatal.value.code == "MISSING_SCOPES"
    unnamed = {"status": "error", "message": "Forbidden", "category": "MISSING_SCOPES"}
    request = httpx.Request("POST", "https://api.hubapi.com/crm/v3/properties/contacts")
    with pytest.raises(FatalError) as derived:
        raise_for_response(httpx.Response(403, json=unnamed, request=request), remote="crm")
    assert "crm.schemas.contacts.write" in str(derived.value)


def test_rate_limit_waits() -> None:
    """429: Retry-After when sent; else the interval when the 10 s window is spent, a second
    when it is not (search's own limit), an hour for DAILY."""
    secondly = {"status": "error", "errorType": "RATE_LIMIT", "policyName": "SECONDLY"}
    cases = [
        ({"retry-after": "3"}, secondly, 3.0),
        (
            {
                "x-hubspot-ratelimit-interval-milliseconds": "10000",
                "x-hubspot-ratelimit-remaining": "0",
            },
            secondly,
            10.0,
        ),
        ({"x-hubspot-ratelimit-interval-milliseconds": "10000"}, secondly, 1.0),
        ({}, {}, 1.0),
        ({}, secondly | {"policyName": "DAILY"}, 3600.0),
    ]
    for headers, body, wait in cases:
        with pytest.raises(RateLimitedError) as limited:
            raise_for_response(httpx.Response(429, json=body, headers=headers), remote="crm")
        assert limited.value.retry_after == wait
