"""Fixtures for the sandbox tests: an emulator, a client that talks to it in-process, a clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncd.sandbox.wix import WixEmulator

API_KEY = "test-api-key"
SITE_ID = "11111111-2222-4333-8444-555555555555"
HEADERS = {"Authorization": API_KEY, "wix-site-id": SITE_ID}


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Receiver:
    """A webhook endpoint that records bodies and answers as scripted."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.statuses: list[int] = []  # answers to give, in order; then 200
        self.delay_seconds = 0.0
        self.app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        body = (await request.body()).decode()
        if self.delay_seconds:
            await anyio.sleep(self.delay_seconds)
        self.bodies.append(body)
        status = self.statuses.pop(0) if self.statuses else 200
        return Response(b"", status_code=status)


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock starting now (so webhook JWTs are still valid)."""
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def receiver() -> Receiver:
    """An in-process webhook receiver."""
    return Receiver()


@pytest.fixture
def emulator(clock: ManualClock, receiver: Receiver) -> WixEmulator:
    """An emulator on the manual clock, with an ACTIVE program, delivering to `receiver`."""
    emu = WixEmulator(
        site_id=SITE_ID,
        api_key=API_KEY,
        clock=clock,
        webhook_url="http://receiver/hook",
        webhook_transport=httpx.ASGITransport(receiver.app),
    )
    emu.knobs.webhook_retry_gaps_seconds = (0.0, 0.0, 0.0)
    emu.activate()
    return emu


@pytest.fixture
async def client(emulator: WixEmulator) -> AsyncIterator[httpx.AsyncClient]:
    """An API-key client talking to the emulator in-process."""
    transport = httpx.ASGITransport(emulator.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://wix", headers=HEADERS
    ) as http:
        yield http


@pytest.fixture
async def admin(emulator: WixEmulator) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credentials, for the /_sandbox admin routes."""
    transport = httpx.ASGITransport(emulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://wix") as http:
        yield http


def seed_one(emulator: WixEmulator, balance: int = 100, email: str | None = None) -> dict[str, Any]:
    """Seed one customer with `balance` points and return the account (wire shape)."""
    email = email or f"customer{len(emulator.state.accounts) + 1}@example.com"
    return emulator.seed_accounts([{"email": email, "name": "Cy Doe", "balance": balance}])[0]
