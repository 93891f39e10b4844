"""The backfill's bulk path (`syncd.reconcile.bulk`), in process against both emulators on
localhost, on SQLite and PostgreSQL: unchanged accounts cost no call, and a pair whose staged
values went stale before its write is carried by the applier instead, exactly once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

import connectors
import syncd.reconcile.run as reconcile_run
from connectors.square.emulator import SquareEmulator
from syncd.engine.applier import Applier
from syncd.engine.outbox import Outbox
from syncd.reconcile.bulk import PairRow
from syncd.sandbox.server import serve_in_thread
from syncd.sandbox.wix import WixEmulator
from syncd.settings import Settings, load_settings
from syncd.store.db import open_store
from syncd.wix.client import WixClient
from tests.databases import BACKENDS, empty_database
from tests.e2e.conftest import tag_counts

CUSTOMERS, DIVERGED = 300, 30

CONFIG = """
[database]
url = "{db}"
[wix]
base_url = "{wix_url}"
site_id = "{site_id}"
api_key = "{api_key}"
requests_per_minute = 100000
[sync]
drift_check_cron = ""
[[connectors]]
name = "shop"
type = "square"
base_url = "{square_url}"
access_token = "{square_token}"
webhook_signature_key = "key"
requests_per_minute = 100000
"""


@dataclass
class World:
    wix: WixEmulator
    square: SquareEmulator
    settings: Settings
    engine: Engine

    def reconcile(self) -> reconcile_run.Report:
        [report] = asyncio.run(reconcile_run.reconcile_all(self.settings, reconcile_run.Options()))
        return report

    def balances(self) -> list[tuple[int, int]]:
        """(Wix, Square) balance of each customer, by email."""
        wix = {a["contact"]["email"]: a["points"]["balance"] for a in self.wix.state.all_accounts()}
        email_of = {c["id"]: c.get("email_address") for c in self.square.customers()}
        square = {email_of[a["customer_id"]]: a["balance"] for a in self.square.accounts()}
        return [(wix[email], square[email]) for email in sorted(wix)]

    def calls(self) -> tuple[int, int]:
        return tuple(  # type: ignore[return-value]
            sum(e.stats.dump()["requests"].values()) for e in (self.wix, self.square)
        )


@pytest.fixture(params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    wix, square = WixEmulator(seed=3), SquareEmulator(seed=4)
    wix.activate()
    for emulator in (wix, square):
        emulator.knobs.requests_per_minute = 0
    people = [
        {"email": f"c{i}@example.com", "name": f"C {i}", "balance": 10 * i}
        for i in range(CUSTOMERS)
    ]
    wix.seed_accounts(
        p | {"phone": f"(415) 555-{i:04d}", "countryCode": "US"} for i, p in enumerate(people)
    )
    square.seed_accounts(
        p | {"phone": f"+1415555{i:04d}", "balance": p["balance"] + (7 if i < DIVERGED else 0)}
        for i, p in enumerate(people)
    )
    for url in empty_database(request.param, tmp_path, "bulk"):
        with serve_in_thread(wix.app) as wix_at, serve_in_thread(square.app) as square_at:
            config = tmp_path / "syncd.toml"
            config.write_text(
                CONFIG.format(
                    db=url,
                    wix_url=wix_at.url,
                    site_id=wix.credentials.site_id,
                    api_key=wix.credentials.api_key,
                    square_url=square_at.url,
                    square_token=square.access_token,
                )
            )
            engine = open_store(url)
            yield World(wix, square, load_settings(config), engine)
            engine.dispose()


def test_unchanged_accounts_cost_no_call(world: World) -> None:
    """The first run makes the minimum: pages of both sides, one write per diverged account,
    one program check; the second run only pages."""
    pages = 3 + 1  # Wix: 300 accounts in pages of 100, contacts in one page of 1,000
    square_pages = 2 + 3  # Square: 300 accounts in pages of 200, customers 100 a call
    first = world.reconcile()
    assert first.errors == []
    assert world.calls() == (pages + DIVERGED + 1, square_pages)
    assert all(w == s for w, s in world.balances())
    assert first.wix_adjusted == DIVERGED and first.unchanged == CUSTOMERS - DIVERGED

    second = world.reconcile()
    assert world.calls() == (2 * pages + DIVERGED + 2, 2 * square_pages)
    assert second.wix_adjusted == 0 and second.unchanged == CUSTOMERS
    assert all(count == 1 for count in tag_counts(world.wix, world.square).values())


def test_a_wix_account_changed_after_staging_is_read_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A customer earns online between staging and the batch's write: Wix refuses the stale
    revision, the write is voided, and the applier carries both changes from fresh reads."""
    customer = world.wix.state.all_accounts()[0]
    original = reconcile_run.begin_writes
    earned = []

    def begin_writes(connection: Any, connector: str, planned: Any) -> Any:
        if not earned and any(p.wix_id == customer["id"] for p, _ in planned):
            world.wix.activity(customer["id"], "earn", 5)
            earned.append(customer["id"])
        return original(connection, connector, planned)

    monkeypatch.setattr(reconcile_run, "begin_writes", begin_writes)
    report = world.reconcile()
    assert earned and report.errors == []
    balances = dict(zip(sorted_ids(world), world.balances(), strict=True))
    start = customer["points"]["balance"]
    assert balances[customer["id"]] == (start + 7 + 5, start + 7 + 5)  # till's 7, online 5
    assert all(w == s for w, s in world.balances())
    assert all(count == 1 for count in tag_counts(world.wix, world.square).values())


def test_a_link_synced_meanwhile_is_left_to_the_applier(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon syncs a link after the backfill read it: the bulk write's check of the bases
    fails, the applier reads fresh, finds it in step and writes nothing more. (A write to
    Square has no revision to go stale: without that check the till would get the points
    twice.)"""
    world.reconcile()
    target = sorted_ids(world)[-1]
    world.wix.activity(target, "earn", 9)
    original = reconcile_run.pair_chunks

    def pair_chunks(*args: Any, **kwargs: Any) -> Iterator[list[PairRow]]:
        for chunk in original(*args, **kwargs):
            if kwargs.get("pending_only") and any(p.wix_id == target for p in chunk):
                pair = next(p for p in chunk if p.wix_id == target)
                world.square.activity(pair.ext_id, "sale", 4)  # then the daemon syncs both
                _daemon_sync(world, pair)
            yield chunk

    monkeypatch.setattr(reconcile_run, "pair_chunks", pair_chunks)
    events_before = len(world.square.events())
    report = world.reconcile()
    assert report.errors == [] and report.ext_adjusted == 0
    assert len(world.square.events()) == events_before + 2  # the sale, the daemon's write
    assert all(w == s for w, s in world.balances())
    assert all(count == 1 for count in tag_counts(world.wix, world.square).values())


def _daemon_sync(world: World, pair: PairRow) -> None:
    """Sync one link as a daemon in another thread would (its own engine and clients)."""

    async def sync() -> None:
        typed = connectors.typed_settings(world.settings)[0]
        engine = open_store(world.settings.database.url)
        try:
            async with WixClient(world.settings.wix) as wix, connectors.create(typed) as shop:
                policy = reconcile_run.policy_for(world.settings, typed)
                assert pair.link_id is not None
                await Applier(Outbox(engine), wix, shop, policy).sync(pair.link_id)
        finally:
            engine.dispose()

    worker = threading.Thread(target=asyncio.run, args=(sync(),))
    worker.start()
    worker.join()


def sorted_ids(world: World) -> list[str]:
    """Wix account ids in the order `World.balances` lists customers (by email)."""
    accounts = world.wix.state.all_accounts()
    return [a["id"] for a in sorted(accounts, key=lambda a: a["contact"]["email"])]
