"""Workers against both emulators: the marks of one burst of webhooks are claimed once, and a
change that lands while its link is being synced is synced too."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from connectors.square.connector import SquareConnector
from syncd.clock import utcnow
from syncd.engine.applier import Applier
from syncd.engine.outbox import Outbox
from syncd.engine.rules import Policy
from syncd.runtime.dirty import mark_dirty
from syncd.runtime.metrics import Metrics
from syncd.runtime.workers import Workers
from syncd.wix.client import WixClient
from tests.runtime.conftest import CONNECTOR, Clients, Customer, Remotes, dirty_ids

pytestmark = pytest.mark.anyio


def balances(remotes: Remotes, customer: Customer) -> tuple[int, int]:
    wix = next(a for a in remotes.wix_site.state.all_accounts() if a["id"] == customer.wix_id)
    return int(wix["points"]["balance"]), int(remotes.square.account(customer.square_id)["balance"])


def workers_for(
    remotes: Remotes, wix: WixClient, connector: SquareConnector, metrics: Metrics
) -> Workers:
    applier = Applier(Outbox(remotes.engine), wix, connector, Policy())
    return Workers(
        remotes.engine,
        {CONNECTOR: applier},
        metrics,
        owner="test:1",
        wake=asyncio.Event(),
        may_write=lambda: True,
        concurrency=2,
    )


def syncs(metrics: Metrics) -> int:
    return int(metrics.value("syncd_syncs_total", connector=CONNECTOR, result="ok"))


def mark(engine: Engine, workers: Workers, customer: Customer) -> None:
    """What intake does for one webhook of the customer's Wix account."""
    mark_dirty(engine, now=utcnow(), wix_account_id=customer.wix_id)
    workers.wake.set()


async def settled(remotes: Remotes, workers: Workers) -> None:
    for _ in range(500):
        if not dirty_ids(remotes.engine) and not workers.in_flight:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the workers never left every link clean")


async def test_the_webhooks_of_one_change_are_synced_once(
    remotes: Remotes, clients: Clients
) -> None:
    """A change's webhooks land a moment apart; the worker claims the link once for all of
    them (it waits a few ms after the first mark), not once per webhook."""
    anna = remotes.customer(1, balance=100)
    metrics = Metrics()
    workers = workers_for(remotes, clients.wix, clients.connector, metrics)
    await workers.appliers[CONNECTOR].sync(anna.link_id)  # bases set: in step
    stop = asyncio.Event()
    running = asyncio.create_task(workers.run(stop))
    await asyncio.sleep(0.05)  # the workers find nothing dirty and wait for a mark
    try:
        remotes.wix_site.activity(anna.wix_id, "earn", 10)
        mark(remotes.engine, workers, anna)  # account_points_updated
        await asyncio.sleep(0.001)
        mark(remotes.engine, workers, anna)  # account_updated, a moment later
        await settled(remotes, workers)
    finally:
        stop.set()
        await running
    assert balances(remotes, anna) == (110, 110)
    assert syncs(metrics) == 1


class SaleAfterFirstRead:
    """The Square emulator's app, with a till sale made (and its webhook's mark) right after
    it answers the first read of `account_id`: a change that lands mid-sync."""

    def __init__(self, remotes: Remotes, customer: Customer, on_sale: Callable[[], None]) -> None:
        self.remotes, self.customer, self.on_sale = remotes, customer, on_sale
        self.armed = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.remotes.square.app(scope, receive, send)
        read = scope["type"] == "http" and scope["method"] == "GET"
        if self.armed and read and self.customer.square_id in scope["path"]:
            self.armed = False
            self.remotes.square.activity(self.customer.square_id, "sale", 7)
            self.on_sale()


async def test_a_change_during_the_sync_is_synced_after_it(remotes: Remotes) -> None:
    """A till sale whose webhook lands while the link's sync is under way is not lost: the
    link stays dirty when the lease is given back and is synced again."""
    anna = remotes.customer(2, balance=100)
    metrics = Metrics()

    def sale_marked() -> None:
        mark_dirty(remotes.engine, now=utcnow(), connector=CONNECTOR, external_id=anna.square_id)
        workers.wake.set()

    square_app = SaleAfterFirstRead(remotes, anna, sale_marked)
    async with (
        WixClient(remotes.wix_settings, transport=httpx.ASGITransport(remotes.wix_site.app)) as wix,
        SquareConnector(
            remotes.square_settings, transport=httpx.ASGITransport(square_app)
        ) as connector,
    ):
        workers = workers_for(remotes, wix, connector, metrics)
        await workers.appliers[CONNECTOR].sync(anna.link_id)
        square_app.armed = True
        stop = asyncio.Event()
        running = asyncio.create_task(workers.run(stop))
        try:
            remotes.wix_site.activity(anna.wix_id, "earn", 10)
            mark(remotes.engine, workers, anna)
            await settled(remotes, workers)
        finally:
            stop.set()
            await running
    assert not square_app.armed  # the sale happened mid-sync
    assert balances(remotes, anna) == (117, 117)
    assert syncs(metrics) == 2
