"""`syncd run` end to end: a real daemon process between the two emulators on localhost."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from connectors.square.emulator import SquareEmulator
from syncd.sandbox.server import serve_in_thread
from syncd.sandbox.wix import WixEmulator
from tests.e2e.conftest import DAEMON_HEAD, converge, tag_counts
from tests.processes import free_port, run_syncd, start_daemon

CUSTOMERS = 40
SIGNATURE_KEY = "e2e-signature-key"
CONFIG = (
    DAEMON_HEAD
    + """[[connectors]]
name = "shop"
type = "square"
base_url = "{square_url}"
access_token = "{square_token}"
webhook_signature_key = "{signature_key}"
webhook_url = "{hook}"
create_missing = "wix"
requests_per_minute = 100000
timeout_seconds = 2.0
"""
)


@dataclass
class Live:
    wix: WixEmulator
    square: SquareEmulator
    config: Path
    port: int
    pairs: list[tuple[str, str]]  # (wix account, square account) of each customer
    changes: Counter[int] = field(default_factory=Counter)  # customer → points changed
    start: list[int] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None

    def syncd(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_syncd(*args, config=self.config)

    def start_daemon(self) -> None:
        self.process = start_daemon(self.config, self.port)

    def balances(self) -> list[tuple[int, int]]:
        wix = {a["id"]: int(a["points"]["balance"]) for a in self.wix.state.all_accounts()}
        square = {a["id"]: int(a["balance"]) for a in self.square.accounts()}
        return [(wix[w], square[s]) for w, s in self.pairs]

    def expected(self) -> list[tuple[int, int]]:
        return [(b + self.changes[i],) * 2 for i, b in enumerate(self.start)]

    def play(self, rng: random.Random, count: int) -> None:
        """Customers act on both sides: online redemptions and earnings, till sales and
        redemptions — each applied at its source, recorded as the change to carry."""
        for _ in range(count):
            i = rng.randrange(len(self.pairs))
            wix_id, square_id = self.pairs[i]
            current = self.start[i] + self.changes[i]
            if rng.random() < 0.5:
                if current >= 10 and rng.random() < 0.4:
                    amount = rng.randint(1, 10)
                    self.wix.activity(wix_id, "redeem", amount)
                    self.changes[i] -= amount
                else:
                    amount = rng.randint(1, 50)
                    self.wix.activity(wix_id, "earn", amount)
                    self.changes[i] += amount
            else:
                amount = rng.randint(1, 60)
                self.square.activity(square_id, "sale", amount)
                self.changes[i] += amount

    def converge(self, timeout: float = 45) -> None:
        converge(self.balances, self.expected, timeout)

    def tag_counts(self) -> Counter[str]:
        return tag_counts(self.wix, self.square)

    def ledgers(self) -> tuple[int, int]:
        return len(self.wix.state.all_transactions()), len(self.square.events())


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    wix = WixEmulator(seed=21, webhook_url=f"{base}/webhooks/wix")
    wix.activate()
    wix.knobs.requests_per_minute = 0
    square = SquareEmulator(
        seed=22, webhook_url=f"{base}/webhooks/shop", signature_key=SIGNATURE_KEY
    )
    square.knobs.requests_per_minute = 0
    rng = random.Random(3)
    start = [rng.randint(0, 400) for _ in range(CUSTOMERS)]
    wix_accounts = wix.seed_accounts(
        [{"email": f"live{i}@example.com", "balance": b} for i, b in enumerate(start)]
    )
    square_accounts = square.seed_accounts(
        [
            {"email": f"live{i}@example.com", "phone": f"+1415777{i:04d}", "balance": b}
            for i, b in enumerate(start)
        ]
    )
    pem = tmp_path / "wix.pem"
    pem.write_text(wix.public_key_pem)
    with serve_in_thread(wix.app) as wix_at, serve_in_thread(square.app) as square_at:
        config = tmp_path / "syncd.toml"
        config.write_text(
            CONFIG.format(
                db=tmp_path / "syncd.db",
                wix_url=wix_at.url,
                site_id=wix.credentials.site_id,
                api_key=wix.credentials.api_key,
                pem=pem,
                port=port,
                square_url=square_at.url,
                square_token=square.access_token,
                signature_key=SIGNATURE_KEY,
                hook=f"{base}/webhooks/shop",
            )
        )
        state = Live(
            wix,
            square,
            config,
            port,
            [(w["id"], s["id"]) for w, s in zip(wix_accounts, square_accounts, strict=True)],
            start=start,
        )
        backfill = state.syncd("--reconcile")
        assert "linked        40 (email 40)" in backfill.stdout, backfill.stdout + backfill.stderr
        yield state
        if state.process and state.process.poll() is None:
            state.process.kill()
            state.process.communicate(timeout=10)


def test_changes_on_both_sides_converge_through_lossy_webhooks(live: Live) -> None:
    """Sales at the till and activity online, with webhooks duplicated, reordered and lost:
    every balance ends at its start plus every change, echoes write nothing, nothing twice;
    SIGTERM then stops the daemon cleanly."""
    for emulator in (live.wix, live.square):
        emulator.knobs.delivery.duplicate_rate = 0.2
        emulator.knobs.delivery.drop_rate = 0.15
        emulator.knobs.delivery.reorder_window = 3
    live.start_daemon()
    live.play(random.Random(4), 120)
    live.converge()
    assert all(count == 1 for count in live.tag_counts().values())
    settled = live.ledgers()
    time.sleep(3)  # three poll intervals and every echo webhook: nothing more to write
    assert live.ledgers() == settled
    metrics = httpx.get(f"http://127.0.0.1:{live.port}/metrics").text
    assert 'syncd_webhooks_duplicate_total{source="wix"}' in metrics
    status = httpx.get(f"http://127.0.0.1:{live.port}/status").json()
    assert status["connectors"]["shop"]["links"] == CUSTOMERS and status["dirty_links"] == 0
    assert live.process is not None
    started = time.monotonic()
    live.process.send_signal(signal.SIGTERM)
    _, stderr = live.process.communicate(timeout=15)
    assert live.process.returncode == 0, stderr
    assert time.monotonic() - started < 10
    assert "Traceback" not in stderr


def test_sigkill_mid_traffic_loses_and_doubles_nothing(live: Live) -> None:
    """Kill the daemon with SIGKILL while it is carrying changes; restarted, it finishes the
    work: every balance right, every write applied exactly once."""
    rng = random.Random(5)
    live.start_daemon()
    for _ in range(3):
        live.play(rng, 40)
        time.sleep(rng.uniform(0.05, 0.5))
        assert live.process is not None
        live.process.send_signal(signal.SIGKILL)
        live.process.communicate(timeout=10)
        live.play(rng, 10)  # life goes on while syncd is down
        live.start_daemon()
    live.converge()
    assert all(count == 1 for count in live.tag_counts().values()), live.tag_counts()


def test_new_customers_are_linked_as_they_appear(live: Live) -> None:
    """A customer new at the till gets a Wix account with their points; one known only at the
    till who signs up online is linked by email and takes the till's balance (initial policy
    external) — all while the daemon runs."""
    live.start_daemon()
    [walk_in] = live.square.seed_accounts(
        [{"email": "walk-in@example.com", "phone": "+14158880001", "balance": 0}]
    )
    live.square.activity(walk_in["id"], "sale", 30)
    [regular] = live.square.seed_accounts(
        [{"email": "regular@example.com", "phone": "+14158880002", "balance": 75}]
    )
    [signed_up] = live.wix.seed_accounts([{"email": "regular@example.com", "balance": 0}])
    live.wix.activity(signed_up["id"], "earn", 5)  # the sign-up bonus fires the webhook
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        wix = {
            a["contact"].get("email"): int(a["points"]["balance"])
            for a in live.wix.state.all_accounts()
        }
        if wix.get("walk-in@example.com") == 30 and wix.get("regular@example.com") == 75:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(
            f"not linked: {wix.get('walk-in@example.com')}, {wix.get('regular@example.com')}"
        )
    assert int(live.square.account(regular["id"])["balance"]) == 75
    assert all(count == 1 for count in live.tag_counts().values())
