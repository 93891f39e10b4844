"""Several spokes at once: Wix with Square, HubSpot and a SQL till, `syncd run` as a process.

Customers change points in all four systems while webhooks are duplicated and dropped; every
balance must end equal on all four, at its start plus every change, with no write made twice.
"""

from __future__ import annotations

import random
import signal
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from connectors.hubspot.emulator import HubSpotEmulator
from connectors.sql.emulator import SqlTill
from connectors.square.emulator import SquareEmulator
from syncd.engine.outbox import TAG_PREFIX
from syncd.sandbox.server import serve_in_thread
from syncd.sandbox.wix import WixEmulator
from tests.e2e.conftest import DAEMON_HEAD, converge, tag_counts
from tests.processes import free_port, run_syncd, start_daemon

CUSTOMERS = 24
SQUARE_KEY = "spokes-square-signature-key"
HUBSPOT_SECRET = "spokes-hubspot-client-secret"
OPERATION_PROPERTY = "syncd_last_operation"
CONFIG = (
    DAEMON_HEAD
    + """
[[connectors]]
name = "shop"
type = "square"
base_url = "{square_url}"
access_token = "{square_token}"
webhook_signature_key = "{square_key}"
webhook_url = "{base}/webhooks/shop"
requests_per_minute = 100000
timeout_seconds = 2.0

[[connectors]]
name = "crm"
type = "hubspot"
base_url = "{hubspot_url}"
access_token = "{hubspot_token}"
client_secret = "{hubspot_secret}"
webhook_url = "{base}/webhooks/crm"
requests_per_minute = 100000
search_requests_per_second = 1000
timeout_seconds = 2.0

[[connectors]]
name = "till"
type = "sql"
url = "{till_url}"
mode = "ledger"
ledger_table = "points_ledger"
"""
)


@dataclass
class Spokes:
    """The four systems, the customers' accounts in each, and what each balance must be."""

    wix: WixEmulator
    square: SquareEmulator
    hubspot: HubSpotEmulator
    till: SqlTill
    config: Path
    port: int
    ids: list[dict[str, str]]  # per customer: system → account id
    start: list[int]
    changes: Counter[int] = field(default_factory=Counter)
    process: subprocess.Popen[str] | None = None

    def syncd(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_syncd(*args, config=self.config, timeout=180)

    def start_daemon(self) -> None:
        self.process = start_daemon(self.config, self.port)

    def balances(self) -> list[tuple[int, int, int, int]]:
        """(Wix, Square, HubSpot, till) of each customer."""
        wix = {a["id"]: int(a["points"]["balance"]) for a in self.wix.state.all_accounts()}
        square = {a["id"]: int(a["balance"]) for a in self.square.accounts()}
        return [
            (
                wix[ids["wix"]],
                square[ids["square"]],
                self.hubspot.points(ids["hubspot"]) or 0,
                self.till.balance(ids["till"]),
            )
            for ids in self.ids
        ]

    def expected(self) -> list[tuple[int, int, int, int]]:
        return [(b + self.changes[i],) * 4 for i, b in enumerate(self.start)]

    def play(self, rng: random.Random, count: int) -> None:
        """A round of customer activity in all four systems, in random order, any customer
        anywhere — HubSpot edits too, though HubSpot has no compare-and-set: an edit landing
        between syncd's read and its write of the same contact must be put back."""
        moves: list[Callable[[int, random.Random], int]] = [
            self._online,
            self._till_square,
            self._till_sql,
            self._crm,
        ]
        for _ in range(count):
            i = rng.randrange(len(self.ids))
            self.changes[i] += rng.choice(moves)(i, rng)

    def _current(self, i: int) -> int:
        return self.start[i] + self.changes[i]

    def _online(self, i: int, rng: random.Random) -> int:
        if self._current(i) >= 10 and rng.random() < 0.4:
            self.wix.activity(self.ids[i]["wix"], "redeem", 10)
            return -10
        self.wix.activity(self.ids[i]["wix"], "earn", 15)
        return 15

    def _till_square(self, i: int, rng: random.Random) -> int:
        self.square.activity(self.ids[i]["square"], "sale", 20)
        return 20

    def _crm(self, i: int, rng: random.Random) -> int:
        amount = rng.randint(-5, 40) if self._current(i) >= 5 else rng.randint(1, 40)
        self.hubspot.add_points(self.ids[i]["hubspot"], amount)
        return amount

    def _till_sql(self, i: int, rng: random.Random) -> int:
        if self._current(i) >= 7 and rng.random() < 0.3:
            self.till.redeem(self.ids[i]["till"], 7)
            return -7
        self.till.sale(self.ids[i]["till"], 12)
        return 12

    def converge(self, timeout: float = 60) -> None:
        converge(self.balances, self.expected, timeout)

    def hubspot_writes(self) -> Counter[str]:
        """How many times each syncd operation was written to HubSpot (its property history)."""
        found: Counter[str] = Counter()
        for ids in self.ids:
            for entry in self.hubspot.history(ids["hubspot"], OPERATION_PROPERTY):
                found[str(entry["value"]).split(":")[0]] += 1
        return found


@pytest.fixture
def spokes(tmp_path: Path) -> Iterator[Spokes]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    wix = WixEmulator(seed=41, webhook_url=f"{base}/webhooks/wix")
    wix.activate()
    square = SquareEmulator(seed=42, webhook_url=f"{base}/webhooks/shop", signature_key=SQUARE_KEY)
    hubspot = HubSpotEmulator(
        seed=43, client_secret=HUBSPOT_SECRET, webhook_url=f"{base}/webhooks/crm"
    )
    for emulator in (wix, square):
        emulator.knobs.requests_per_minute = 0
    hubspot.knobs.requests_per_ten_seconds = 0
    hubspot.knobs.search_requests_per_second = 0
    till_url = f"sqlite:///{tmp_path / 'till.db'}"
    till = SqlTill(till_url, mode="ledger")
    rng = random.Random(7)
    start = [rng.randint(0, 300) for _ in range(CUSTOMERS)]
    people = [
        {"email": f"spoke{i}@example.com", "phone": f"+1415999{i:04d}", "balance": b}
        for i, b in enumerate(start)
    ]
    wix_ids = [a["id"] for a in wix.seed_accounts(people)]
    square_ids = [a["id"] for a in square.seed_accounts(people)]
    hubspot_ids = [c["id"] for c in hubspot.seed_contacts(people)]
    till_ids = [str(i) for i in till.seed(people)]
    ids = [
        {"wix": w, "square": s, "hubspot": h, "till": t}
        for w, s, h, t in zip(wix_ids, square_ids, hubspot_ids, till_ids, strict=True)
    ]
    pem = tmp_path / "wix.pem"
    pem.write_text(wix.public_key_pem)
    with (
        serve_in_thread(wix.app) as wix_at,
        serve_in_thread(square.app) as square_at,
        serve_in_thread(hubspot.app) as hubspot_at,
    ):
        config = tmp_path / "syncd.toml"
        config.write_text(
            CONFIG.format(
                db=tmp_path / "syncd.db",
                wix_url=wix_at.url,
                site_id=wix.credentials.site_id,
                api_key=wix.credentials.api_key,
                pem=pem,
                port=port,
                base=base,
                square_url=square_at.url,
                square_token=square.access_token,
                square_key=SQUARE_KEY,
                hubspot_url=hubspot_at.url,
                hubspot_token=hubspot.access_token,
                hubspot_secret=HUBSPOT_SECRET,
                till_url=till_url,
            )
        )
        state = Spokes(wix, square, hubspot, till, config, port, ids, start)
        yield state
        if state.process and state.process.poll() is None:
            state.process.kill()
            state.process.communicate(timeout=10)


def test_every_spoke_converges_through_lossy_webhooks(spokes: Spokes) -> None:
    """The backfill links every customer in each spoke; then changes in any of the four
    systems, with webhooks duplicated and dropped, reach all the others: every balance is
    its start plus every change everywhere, no write is made twice, and status and metrics
    are per connector."""
    backfill = spokes.syncd("--reconcile")
    assert backfill.returncode == 0, backfill.stdout + backfill.stderr
    assert backfill.stdout.count(f"linked        {CUSTOMERS} (email {CUSTOMERS})") == 3, (
        backfill.stdout
    )
    for emulator in (spokes.wix, spokes.square, spokes.hubspot):
        emulator.knobs.delivery.duplicate_rate = 0.2
        emulator.knobs.delivery.drop_rate = 0.15
    spokes.start_daemon()
    rng = random.Random(8)
    for _ in range(3):
        spokes.play(rng, 40)
        spokes.converge()
    assert all(n == 1 for n in tag_counts(spokes.wix, spokes.square).values())
    assert all(n == 1 for n in spokes.hubspot_writes().values()), spokes.hubspot_writes()
    assert spokes.till.applied_count(TAG_PREFIX) == len(set(spokes.till.operation_ids()))
    status = httpx.get(f"http://127.0.0.1:{spokes.port}/status").json()
    assert {name: c["links"] for name, c in status["connectors"].items()} == {
        "shop": CUSTOMERS,
        "crm": CUSTOMERS,
        "till": CUSTOMERS,
    }
    metrics = httpx.get(f"http://127.0.0.1:{spokes.port}/metrics").text
    for name in ("shop", "crm", "till"):
        assert f'syncd_syncs_total{{connector="{name}",result="ok"}}' in metrics
    assert spokes.process is not None
    spokes.process.send_signal(signal.SIGTERM)
    _, stderr = spokes.process.communicate(timeout=15)
    assert spokes.process.returncode == 0, stderr
    assert "Traceback" not in stderr
