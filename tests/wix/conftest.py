"""The Wix client's tests run against the Wix emulator served on a real localhost port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from syncd.sandbox.server import RunningServer, serve_in_thread
from syncd.sandbox.wix import WixEmulator
from syncd.settings import WixSettings

SEEDED = 250


@pytest.fixture
def emulator() -> WixEmulator:
    site = WixEmulator(seed=7)
    site.activate()
    site.seed_accounts(SEEDED)
    return site


@pytest.fixture
def served(emulator: WixEmulator) -> Iterator[RunningServer]:
    with serve_in_thread(emulator.app) as server:
        yield server


@pytest.fixture
def settings(served: RunningServer, emulator: WixEmulator) -> WixSettings:
    return api_key_settings(served, emulator)


def api_key_settings(served: RunningServer, emulator: WixEmulator, **extra: object) -> WixSettings:
    creds = emulator.credentials
    values: dict[str, object] = {
        "base_url": served.url,
        "site_id": creds.site_id,
        "api_key": SecretStr(creds.api_key),
        "requests_per_minute": 100_000,
        "timeout_seconds": 2.0,
        **extra,
    }
    return WixSettings.model_validate(values)
