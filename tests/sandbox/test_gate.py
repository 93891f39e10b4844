"""The shared gate with a toy vendor: what is the gate's and what is the vendor's front door."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from syncd.sandbox.errors import ApiError
from syncd.sandbox.faults import RequestFaults, SlidingWindowLimiter
from syncd.sandbox.gate import Gate
from syncd.sandbox.stats import RequestStats

pytestmark = pytest.mark.anyio


class ToyError(ApiError):
    """The toy vendor's refusal: {"error": reason}."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)

    def body(self) -> dict[str, Any]:
        return {"error": self.reason}


class ToyDoor:
    """Callers send `x-key: good`; their key is what the rate limit counts."""

    def authenticate(self, request: Request) -> str:
        key = request.headers.get("x-key")
        if key != "good":
            raise ToyError(401, "who are you")
        return key

    def too_many_requests(self) -> ApiError:
        return ToyError(429, "slow down")

    def server_fault(self, status: int) -> Response:
        return Response(b"toy fault", status_code=status)


@dataclass
class ToyKnobs:
    requests_per_minute: int = 2
    retry_after: Literal["computed"] | int | None = "computed"
    faults: RequestFaults = field(default_factory=RequestFaults)


@dataclass
class Toy:
    knobs: ToyKnobs
    stats: RequestStats
    applied: list[str]
    http: httpx.AsyncClient


@pytest.fixture
async def toy() -> AsyncIterator[Toy]:
    """A one-route toy API behind the shared gate, on a clock that never moves."""
    knobs, stats, applied = ToyKnobs(), RequestStats(), []
    gate = Gate(knobs, ToyDoor(), SlidingWindowLimiter(2, clock=lambda: 0.0), stats)

    async def write(request: Request) -> Any:
        applied.append(request.url.path)
        return {"ok": True}

    app = Starlette(
        routes=[
            gate.route("POST", "/things", write),
            gate.route("POST", "/open", write, authenticated=False),
        ]
    )
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://toy") as http:
        yield Toy(knobs, stats, applied, http)


async def test_refusals_carry_the_vendor_body_and_are_counted(toy: Toy) -> None:
    """A failed auth is the vendor's 401 body; requests and statuses are counted per route."""
    refused = await toy.http.post("/things")
    assert (refused.status_code, refused.json()) == (401, {"error": "who are you"})
    assert (await toy.http.post("/things", headers={"x-key": "good"})).json() == {"ok": True}
    assert toy.stats.dump() == {
        "requests": {"POST /things": 2},
        "statuses": {"401": 1, "200": 1},
        "rate_limited": 0,
        "faults": {},
    }


async def test_rate_limit_uses_the_vendor_429_and_the_retry_after_knob(toy: Toy) -> None:
    """Over the limit: the vendor's 429 body, Retry-After computed; unauthenticated routes
    are not limited."""
    answers = [await toy.http.post("/things", headers={"x-key": "good"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json() == {"error": "slow down"} and answers[2].headers["Retry-After"]
    assert (await toy.http.post("/open")).status_code == 200
    assert toy.stats.rate_limited == 1


async def test_faults_answer_with_the_vendor_fault_body(toy: Toy) -> None:
    """A fault before apply changes nothing; one after commit applies, then fails."""
    toy.knobs.faults.error_rate = 1.0
    before = await toy.http.post("/open")
    assert (before.status_code, before.content, toy.applied) == (503, b"toy fault", [])
    toy.knobs.faults = RequestFaults(fail_after_commit_rate=1.0, rng=random.Random(0))
    after = await toy.http.post("/open")
    assert (after.status_code, toy.applied) == (500, ["/open"])
    assert toy.stats.faults == {"error_before_apply": 1, "fail_after_commit": 1}
