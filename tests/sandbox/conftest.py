"""Fixtures for the sandbox tests: an emulator, a client that talks to it in-process, a clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from syncd.sandbox.wix import WixEmulator
from tests.fakes import ManualClock, Receiver

API_KEY = "test-api-key"
SITE_ID = "11111111-2222-4333-8444-555555555555"
HEADERS = {"Authorization": API_KEY, "wix-site-id": SITE_ID}


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
