"""Fixtures for the HubSpot connector tests.

`emulator` is a HubSpot emulator on a manual clock; `hubspot` is the connector talking to it
in-process through `httpx.ASGITransport`, its budgets sleeping on a fake clock. `served` puts
the same emulator on a real localhost port, for what only a socket shows (timeouts).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.emulator import HubSpotEmulator
from connectors.hubspot.settings import HubSpotSettings
from syncd.budget import TokenBucket
from syncd.sandbox.server import RunningServer, serve_in_thread
from tests.fakes import FakeTime, ManualClock

TOKEN = "test-hubspot-token"
CLIENT_SECRET = "test-client-secret"
TARGET_URL = "https://syncd.example.com/webhooks/crm"
POINTS = "wix_loyalty_points"
OPERATION = "syncd_last_operation"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def emulator(clock: ManualClock, fake_time: FakeTime) -> HubSpotEmulator:
    """A portal with the points property and no rate limits, on the manual clock; its rate
    windows run on `fake_time`, the clock the connector's budgets sleep on."""
    emu = HubSpotEmulator(
        access_token=TOKEN,
        client_secret=CLIENT_SECRET,
        clock=clock,
        monotonic=fake_time.clock,
        target_url=TARGET_URL,
    )
    emu.knobs.requests_per_ten_seconds = 0
    emu.knobs.search_requests_per_second = 0
    emu.knobs.daily_limit = 0
    return emu


def hubspot_settings(base_url: str, **extra: Any) -> HubSpotSettings:
    values: dict[str, Any] = {
        "name": "crm",
        "type": "hubspot",
        "base_url": base_url,
        "access_token": SecretStr(TOKEN),
        "client_secret": SecretStr(CLIENT_SECRET),
        "webhook_url": TARGET_URL,
        "requests_per_minute": 100_000,
        "timeout_seconds": 2.0,
        **extra,
    }
    return HubSpotSettings.model_validate(values)


def connect(emulator: HubSpotEmulator, fake_time: FakeTime, **extra: Any) -> HubSpotConnector:
    """The connector for `emulator`, in-process, its budgets on `fake_time`."""
    return HubSpotConnector(
        hubspot_settings("http://hubspot.test", **extra),
        transport=httpx.ASGITransport(emulator.app),
        budget=TokenBucket(100_000, clock=fake_time.clock, sleep=fake_time.sleep),
        search_budget=TokenBucket(100_000, clock=fake_time.clock, sleep=fake_time.sleep),
    )


@pytest.fixture
async def hubspot(
    emulator: HubSpotEmulator, fake_time: FakeTime
) -> AsyncIterator[HubSpotConnector]:
    """The connector, prepared (the operation property exists), talking to `emulator`."""
    async with connect(emulator, fake_time) as connector:
        assert isinstance(connector, HubSpotConnector)
        await connector.prepare()
        yield connector


@pytest.fixture
def served(emulator: HubSpotEmulator) -> Iterator[RunningServer]:
    with serve_in_thread(emulator.app) as server:
        yield server
