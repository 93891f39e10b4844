"""Fixtures for the Square connector and emulator tests.

In-process fixtures (`emulator`, `client`, `admin`) drive the emulator through
`httpx.ASGITransport` on a manual clock; `served` puts a seeded emulator on a real localhost
port for the connector's end-to-end tests.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors.square.connector import SquareConnector
from connectors.square.emulator import SquareEmulator
from connectors.square.settings import SquareSettings
from syncd.budget import TokenBucket
from syncd.sandbox.server import RunningServer, serve_in_thread
from tests.fakes import FakeTime, ManualClock, Receiver

TOKEN = "test-square-token"
SIGNATURE_KEY = "test-signature-key"
NOTIFICATION_URL = "https://syncd.example.com/webhooks/pos"
HOOK_URL = "http://receiver/hook"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SEEDED = 250


class ScriptedRandom(random.Random):
    """A random source answering the given values first, then `then` forever."""

    def __init__(self, values: Iterable[float], then: float = 0.99) -> None:
        super().__init__(0)
        self.values = list(values)
        self.then = then

    def random(self) -> float:
        return self.values.pop(0) if self.values else self.then


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def emulator(clock: ManualClock, receiver: Receiver) -> SquareEmulator:
    """An emulator on the manual clock, delivering webhooks to `receiver`."""
    emu = SquareEmulator(
        access_token=TOKEN,
        clock=clock,
        webhook_url=HOOK_URL,
        notification_url=NOTIFICATION_URL,
        signature_key=SIGNATURE_KEY,
        webhook_transport=httpx.ASGITransport(receiver.app),
    )
    emu.knobs.webhook_retry_gaps_seconds = (0.0, 0.0, 0.0)
    return emu


@pytest.fixture
async def client(emulator: SquareEmulator) -> AsyncIterator[httpx.AsyncClient]:
    """A client with the access token, talking to the emulator in-process."""
    transport = httpx.ASGITransport(emulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sq", headers=AUTH) as http:
        yield http


@pytest.fixture
async def admin(emulator: SquareEmulator) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credentials, for the /_sandbox admin routes."""
    transport = httpx.ASGITransport(emulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sq") as http:
        yield http


@pytest.fixture
def seller() -> SquareEmulator:
    """A seeded emulator on the real clock, for end-to-end tests over a real port."""
    emu = SquareEmulator(access_token=TOKEN, seed=7, signature_key=SIGNATURE_KEY)
    emu.seed_accounts(SEEDED)
    return emu


@pytest.fixture
def served(seller: SquareEmulator) -> Iterator[RunningServer]:
    with serve_in_thread(seller.app) as server:
        yield server


def square_settings(base_url: str, **extra: Any) -> SquareSettings:
    values: dict[str, Any] = {
        "name": "pos",
        "type": "square",
        "base_url": base_url,
        "access_token": SecretStr(TOKEN),
        "webhook_signature_key": SecretStr(SIGNATURE_KEY),
        "webhook_url": NOTIFICATION_URL,
        "requests_per_minute": 100_000,
        "timeout_seconds": 2.0,
        **extra,
    }
    return SquareSettings.model_validate(values)


@pytest.fixture
def settings(served: RunningServer) -> SquareSettings:
    return square_settings(served.url)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def square(settings: SquareSettings, fake_time: FakeTime) -> AsyncIterator[SquareConnector]:
    """The connector against the served emulator; its budget sleeps on a fake clock."""
    budget = TokenBucket(100_000, clock=fake_time.clock, sleep=fake_time.sleep)
    async with SquareConnector(settings, budget=budget) as connector:
        assert isinstance(connector, SquareConnector)
        yield connector


@pytest.fixture
def served_settings(served: RunningServer) -> SquareSettings:
    return square_settings(served.url)
