"""What the chaos harness found in syncd, each reduced to a minimal reproduction.

A finding starts here as an `xfail(strict=True)` test while its bug is open; once the fix
lands the strict xfail reports the pass and the mark comes off, the test staying as a
regression test. F1, F2 and F3 are fixed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.types import ASGIApp

from connectors.square.connector import SquareConnector
from connectors.square.emulator import SquareEmulator
from syncd.clock import utcnow
from syncd.engine.applier import Applier
from syncd.engine.outbox import Outbox
from syncd.engine.rules import Policy
from syncd.errors import SyncdError
from syncd.reconcile.matching import match
from syncd.runtime.dirty import record_change
from syncd.runtime.matcher import Matcher
from syncd.sandbox.server import serve_in_thread
from syncd.sandbox.wix import WixEmulator
from syncd.store.db import open_store, session_scope
from syncd.store.models import StagedAccount
from syncd.wix.client import WixClient
from tests.chaos.daemons import free_port, syncd_env, write_config
from tests.chaos.world import SIGNATURE_KEY, Customer, Shop, phone_of
from tests.databases import POSTGRES_ENV, postgres_schema
from tests.runtime.conftest import CONNECTOR, Remotes, dirty_ids
from tests.runtime.conftest import remotes as remotes  # the runtime tests' fixture, reused

SQUARE_POLL_OVERLAP_SECONDS = 5  # connectors.square.connector.CHANGES_OVERLAP


class _Clock:
    """The emulators' clock, `behind` the real time while customers are seeded."""

    def __init__(self, behind: timedelta) -> None:
        self.behind = behind

    def __call__(self) -> datetime:
        return utcnow() - self.behind


@pytest.fixture
def backfilled(tmp_path: Path) -> Iterator[tuple[Shop, Path, Customer]]:
    """One customer with 100 points on both sides since an hour ago, linked by
    `syncd --reconcile`; no webhooks configured at the vendors (they are optional: syncd
    polls)."""
    clock = _Clock(timedelta(hours=1))
    shop = Shop(
        WixEmulator(seed=1, clock=clock, monotonic=time.monotonic),
        SquareEmulator(seed=2, signature_key=SIGNATURE_KEY, clock=clock, monotonic=time.monotonic),
        [],
    )
    for knobs in (shop.wix.knobs, shop.square.knobs):
        knobs.requests_per_minute = 0
    customer = Customer(0, "equal", "finding@example.com", phone_of(0))
    shop.add(customer, 100, 100)
    clock.behind = timedelta(0)
    shop.wix.activate()
    with serve_in_thread(shop.wix.app) as wix_at, serve_in_thread(shop.square.app) as square_at:
        database = f"sqlite:///{tmp_path / 'syncd.db'}"
        config = write_config(
            tmp_path, shop, database, wix_at.url, square_at.url, "http://127.0.0.1:9"
        )
        done = subprocess.run(
            [sys.executable, "-m", "syncd", "--reconcile", "--config", str(config)],
            env=syncd_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        yield shop, config, customer


def test_a_till_sale_between_the_backfill_and_the_daemon_reaches_wix(
    backfilled: tuple[Shop, Path, Customer],
) -> None:
    """F1 (fixed): a sale at the till after the backfill, before `syncd run` first polls (its
    webhook lost, or none configured), still reaches Wix once the daemon runs (the polls used
    to start at the daemon's first poll instead of the backfill's start)."""
    shop, config, customer = backfilled
    shop.change_square(customer, "sale", 25)
    time.sleep(SQUARE_POLL_OVERLAP_SECONDS + 1.5)  # the operator starts the daemon a bit later
    assert _run_daemon_until(config, lambda: shop.wix_balance(customer) == 125)
    assert (shop.wix_balance(customer), shop.square_balance(customer)) == (125, 125)


def _run_daemon_until(config: Path, done: Callable[[], bool]) -> bool:
    """`syncd run` until `done()` or six polls after it is ready; whether it was ready."""
    port = free_port()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "syncd", "run", "--config", str(config)],
        env=syncd_env(port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ready = _until_ready(port, daemon)
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and not done():
            time.sleep(0.25)
    finally:
        daemon.terminate()
        daemon.wait(timeout=15)
    return ready


def _until_ready(port: int, daemon: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and daemon.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


def test_reconcile_pairs_accounts_by_email_on_postgresql() -> None:
    """F2 (fixed): the backfill's matching pairs one Wix and one Square account sharing an
    email on PostgreSQL as on SQLite (it bound one parameter as text and as varchar)."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: the PostgreSQL matching finding is skipped")
    with contextlib.contextmanager(postgres_schema)(base) as url:
        engine = open_store(url)
        try:
            with session_scope(engine) as session:
                for side, account in (("wix", "w-1"), ("external", "x-1")):
                    staged = StagedAccount(
                        side=side,
                        connector="shop",
                        account_id=account,
                        email="same@example.com",
                        balance=10,
                    )
                    session.add(staged)
            assert match(engine, "shop", ["email"]).by == {"email": 1}
        finally:
            engine.dispose()


class _LosesAnswers(httpx.AsyncBaseTransport):
    """Delivers every request to the emulator; the answers to one route never come back (a
    timeout after the remote applied it): fault injection at the network boundary."""

    def __init__(self, app: ASGIApp, method: str, path: str) -> None:
        self.inner = httpx.ASGITransport(app)
        self.route = (method, path)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if (request.method, request.url.path) == self.route:
            await response.aread()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response


@pytest.mark.anyio
async def test_a_new_online_customer_keeps_their_points_when_the_creation_answer_is_lost(
    remotes: Remotes,
) -> None:
    """F3 (fixed): a customer new online with 69 points; syncd creates their Square account
    but the answer is lost; the next matcher run links that account as created: both sides
    end at 69 (it used to link it as a pre-existing account, and initial_policy external
    copied its 0 over the customer's Wix points)."""
    [account] = remotes.wix_site.seed_accounts(
        [{"email": "new@example.com", "phone": "(415) 555-0123", "countryCode": "US"}]
    )
    remotes.wix_site.activity(account["id"], "earn", 69)
    record_change(
        remotes.engine,
        source="wix",
        event_id="e-new",
        event_type="wix.loyalty.v1.account_points_updated",
        now=utcnow(),
        wix_account_id=account["id"],
    )
    lossy = _LosesAnswers(remotes.square.app, "POST", "/v2/loyalty/accounts")
    settings = remotes.square_settings.model_copy(update={"create_missing": "both"})
    async with (
        WixClient(remotes.wix_settings, transport=httpx.ASGITransport(remotes.wix_site.app)) as wix,
        SquareConnector(settings, transport=lossy) as first,
        SquareConnector(settings, transport=httpx.ASGITransport(remotes.square.app)) as shop,
    ):
        with pytest.raises(SyncdError):
            await Matcher(remotes.engine, wix, {CONNECTOR: first}).run()
        assert len(remotes.square.accounts()) == 1  # created, though syncd never heard so
        assert await Matcher(remotes.engine, wix, {CONNECTOR: shop}).run() == 1
        [link_id] = dirty_ids(remotes.engine)
        applier = Applier(Outbox(remotes.engine), wix, shop, Policy())
        await applier.sync(link_id)
    [square] = remotes.square.accounts()
    wix_balance = remotes.wix_site.state.account(account["id"]).points["balance"]
    assert (wix_balance, square["balance"]) == (69, 69)
