"""End-to-end fixtures: both emulators on real localhost ports, syncd run as a separate process
against a config file, and the ledgers read back from the emulators."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connectors.square.emulator import SquareEmulator
from syncd.engine.outbox import TAG_PREFIX
from syncd.sandbox.server import RunningServer, serve_in_thread
from syncd.sandbox.wix import WixEmulator
from tests.e2e import scenario
from tests.processes import clean_env

CONFIG = """
[database]
url = "sqlite:///{db}"
[wix]
base_url = "{wix_url}"
site_id = "{site_id}"
api_key = "{api_key}"
requests_per_minute = 100000
timeout_seconds = 1.0
[sync]
initial_policy = "external"
[[connectors]]
name = "shop"
type = "square"
base_url = "{square_url}"
access_token = "{square_token}"
create_missing = "both"
requests_per_minute = 100000
timeout_seconds = 1.0
"""


DAEMON_HEAD = """
[database]
url = "sqlite:///{db}"
[wix]
base_url = "{wix_url}"
site_id = "{site_id}"
api_key = "{api_key}"
webhook_public_key_file = "{pem}"
requests_per_minute = 100000
timeout_seconds = 2.0
[sync]
poll_interval_seconds = 1
[server]
host = "127.0.0.1"
port = {port}
"""
"""The part of a `syncd run` config every daemon test shares: Wix, the store, a 1 s poll."""


def converge(
    balances: Callable[[], list[Any]], expected: Callable[[], list[Any]], timeout: float
) -> None:
    """Wait until every customer's balances are as expected; else fail naming the first ones
    that are not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if balances() == expected():
            return
        time.sleep(0.2)
    diffs = [
        (i, got, want)
        for i, (got, want) in enumerate(zip(balances(), expected(), strict=True))
        if got != want
    ]
    raise AssertionError(f"not converged: {diffs[:10]}")


@dataclass
class Backfill:
    wix: WixEmulator
    square: SquareEmulator
    shop: scenario.Shop
    config: Path

    def run(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        """`syncd --reconcile` as its own process, the way an operator runs it."""
        return subprocess.run(
            [sys.executable, "-m", "syncd", "--reconcile", "--config", str(self.config), *args],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def syncd(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Any other `syncd` command against the same config."""
        return subprocess.run(
            [sys.executable, "-m", "syncd", *args, "--config", str(self.config)],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "syncd", "--reconcile", "--config", str(self.config)],
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def writes(self) -> tuple[int, int]:
        """(Wix ledger entries, Square ledger events) — a run that writes nothing keeps both."""
        return len(self.wix.state.all_transactions()), len(self.square.events())

    def tag_counts(self) -> Counter[str]:
        return tag_counts(self.wix, self.square)

    def mismatches(self) -> list[str]:
        found = []
        for customer in self.shop.customers:
            want = scenario.expected(customer)
            got = scenario.actual(customer, self.wix, self.square)
            if want != got:
                found.append(f"{customer.kind} {customer.email}: want {want}, got {got}")
        return found


def tag_counts(wix: WixEmulator, square: SquareEmulator) -> Counter[str]:
    """How many times each syncd operation appears in the two emulators' ledgers."""
    tags: Counter[str] = Counter()
    for entry in wix.state.all_transactions():
        description = str(entry.get("description") or "")
        if description.startswith(TAG_PREFIX):
            tags[description.split()[0]] += 1
    for entry in square.events():
        reason = str((entry.get("adjust_points") or {}).get("reason") or "")
        if reason.startswith(TAG_PREFIX):
            tags[reason.split()[0]] += 1
    return tags


@pytest.fixture
def backfill(tmp_path: Path) -> Iterator[Backfill]:
    wix = WixEmulator(seed=11)
    wix.activate()
    wix.knobs.requests_per_minute = 0
    square = SquareEmulator(seed=12)
    square.knobs.requests_per_minute = 0
    shop = scenario.build(seed=5)
    scenario.seed(shop, wix, square)
    with serve_in_thread(wix.app) as wix_server, serve_in_thread(square.app) as square_server:
        config = tmp_path / "syncd.toml"
        config.write_text(_config(tmp_path, wix, square, wix_server, square_server))
        yield Backfill(wix, square, shop, config)


def _config(
    tmp: Path,
    wix: WixEmulator,
    square: SquareEmulator,
    wix_at: RunningServer,
    square_at: RunningServer,
) -> str:
    return CONFIG.format(
        db=tmp / "syncd.db",
        wix_url=wix_at.url,
        site_id=wix.credentials.site_id,
        api_key=wix.credentials.api_key,
        square_url=square_at.url,
        square_token=square.access_token,
    )
