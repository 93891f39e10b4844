"""Square answers mapped into syncd's error tree, as the connector raises them."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from connectors.square.connector import SquareConnector
from connectors.square.emulator import SquareEmulator
from connectors.square.mapping import raise_for_response
from connectors.square.settings import SquareSettings
from syncd.budget import TokenBucket
from syncd.errors import (
    FatalError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    RetriableError,
    SkipError,
)
from tests.fakes import FakeTime

pytestmark = pytest.mark.anyio


async def test_wrong_token_is_fatal(served_settings: SquareSettings) -> None:
    """401 UNAUTHORIZED: FatalError naming the access token, with status, code, request id."""
    wrong = served_settings.model_copy(update={"access_token": SecretStr("wrong")})
    async with SquareConnector(wrong) as square:
        with pytest.raises(FatalError) as fatal:
            await square.get_account("x")
    assert (fatal.value.status, fatal.value.code) == (401, "UNAUTHORIZED")
    assert fatal.value.request_id and "access_token" in str(fatal.value)
    assert fatal.value.remote == "pos"


async def test_expired_token_is_fatal(square: SquareConnector, seller: SquareEmulator) -> None:
    """401 ACCESS_TOKEN_EXPIRED: FatalError."""
    seller.knobs.token_expired = True
    with pytest.raises(FatalError) as fatal:
        await square.find_accounts("phone", "+14155550001")
    assert fatal.value.code == "ACCESS_TOKEN_EXPIRED"


async def test_rate_limit_is_retried_then_rate_limited(
    square: SquareConnector, seller: SquareEmulator, fake_time: FakeTime
) -> None:
    """429 RATE_LIMITED is retried under the policy, pausing the budget for Retry-After; when
    it persists, RateLimitedError carries retry_after."""
    seller.knobs.requests_per_minute = 1  # get_account is one call
    seller.knobs.retry_after = 7
    await square.get_account(seller.accounts()[0]["id"])  # spends the one slot
    started = fake_time.now
    with pytest.raises(RateLimitedError) as limited:
        await square.get_account(seller.accounts()[1]["id"])
    assert (limited.value.status, limited.value.code, limited.value.retry_after) == (
        429,
        "RATE_LIMITED",
        7.0,
    )
    assert square.client.rate_limited == 5 and seller.stats.rate_limited == 5
    assert fake_time.now - started >= 7 * 4  # the budget paused before every retry


async def test_rate_limit_without_retry_after_waits_a_minute(
    served_settings: SquareSettings, seller: SquareEmulator, fake_time: FakeTime
) -> None:
    """No Retry-After (the default): the budget pauses the default minute before retrying."""
    seller.knobs.requests_per_minute = 1  # get_account is one call
    budget = TokenBucket(100_000, clock=fake_time.clock, sleep=fake_time.sleep)
    async with SquareConnector(served_settings, budget=budget) as square:
        assert isinstance(square, SquareConnector)
        await square.get_account(seller.accounts()[0]["id"])
        started = fake_time.now
        with pytest.raises(RateLimitedError) as limited:
            await square.get_account(seller.accounts()[0]["id"])
    assert limited.value.retry_after is None and fake_time.now - started >= 60 * 4


async def test_server_errors_retry_reads_and_leave_writes_unknown(
    square: SquareConnector, seller: SquareEmulator
) -> None:
    """503 on every try: a read ends RetriableError, a write OutcomeUnknownError."""
    seller.knobs.faults.error_rate = 1.0
    account = seller.accounts()[0]["id"]
    with pytest.raises(RetriableError) as read:
        await square.get_account(account)
    assert (read.value.status, read.value.code) == (503, "SERVICE_UNAVAILABLE")
    assert not isinstance(read.value, OutcomeUnknownError)
    with pytest.raises(OutcomeUnknownError):
        await square.apply_delta(account, 1, key="op-5xx", reason="syncd:op-5xx")
    assert seller.stats.dump()["requests"]["GET /v2/loyalty/accounts/{account_id}"] == 5


async def test_unreachable_write_is_not_unknown(seller: SquareEmulator) -> None:
    """Nothing listening: the write cannot have been sent, so it is RetriableError."""
    settings = SquareSettings(
        name="pos", type="square", base_url="http://127.0.0.1:9", access_token=SecretStr("t")
    )
    async with SquareConnector(settings) as square:
        with pytest.raises(RetriableError) as down:
            await square.apply_delta("a", 1, key="op", reason="syncd:op")
    assert not isinstance(down.value, OutcomeUnknownError)
    assert "base_url" in str(down.value)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (403, "INSUFFICIENT_SCOPES", FatalError),
        (404, "NOT_FOUND", NotFoundError),
        (400, "IDEMPOTENCY_KEY_REUSED", SkipError),
        (400, "INVALID_PHONE_NUMBER", SkipError),
        (409, "CONFLICT", SkipError),
        (502, "BAD_GATEWAY", RetriableError),
        (429, "RATE_LIMITED", RateLimitedError),
    ],
)
def test_raise_for_response_table(status: int, code: str, expected: type[Exception]) -> None:
    """Each status/code lands on its branch of the tree, carrying code, detail and field."""
    body = {"errors": [{"category": "X", "code": code, "detail": "why", "field": "f"}]}
    response = httpx.Response(status, json=body, headers={"x-request-id": "req-1"})
    with pytest.raises(expected) as raised:
        raise_for_response(response, remote="pos", account="acct")
    error = raised.value
    assert type(error) is expected
    assert (getattr(error, "code", None), getattr(error, "request_id", None)) == (code, "req-1")
    assert "why (field f)" in str(error) and "account=acct" in str(error)


def test_retry_after_header_forms() -> None:
    """Retry-After as seconds or an HTTP date; a body that is not JSON still maps."""
    seconds = httpx.Response(429, headers={"retry-after": "12"}, content=b"busy")
    with pytest.raises(RateLimitedError) as limited:
        raise_for_response(seconds, remote="pos")
    assert limited.value.retry_after == 12.0 and limited.value.code is None
    dated = httpx.Response(429, headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    with pytest.raises(RateLimitedError) as past:
        raise_for_response(dated, remote="pos")
    assert past.value.retry_after == 0.0
