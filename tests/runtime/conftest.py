"""Runtime fixtures: a store per test (SQLite, and PostgreSQL when configured), both emulators
in process behind `httpx.ASGITransport`, the clients syncd reaches them with, linked customers
on both sides, and a daemon's HTTP app between them (`site`, shared with tests/hostile)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlmodel import col

from connectors.square.connector import SquareConnector
from connectors.square.emulator import SquareEmulator
from connectors.square.settings import SquareSettings
from syncd.clock import utcnow
from syncd.runtime.daemon import Daemon
from syncd.sandbox.wix import WebhookEvent, WixEmulator
from syncd.settings import Settings, WixSettings
from syncd.store.db import make_engine, open_store, session_scope, upgrade
from syncd.store.models import InboxEvent, Link
from syncd.wix.client import WixClient
from tests.databases import BACKENDS, empty_database
from tests.processes import free_port

POSTGRES_ENV = "SYNCD_TEST_POSTGRES_URL"
CONNECTOR = "shop"
WIX_API_KEY = "wix-api-key-7c1e0b"  # distinctive, so a leak is found by searching for it
SQUARE_TOKEN = "square-access-token-4f9d2a"
SIGNATURE_KEY = "square-signature-key-b83e61"
HOOK_URL = f"https://syncd.example.com/webhooks/{CONNECTOR}"
SQUARE_HEADER = "x-square-hmacsha256-signature"
WIX_SIGNING_KEY = (  # one key for every emulated site: generating one per test is slow
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
    .private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    .decode()
)


# -- stores -------------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of its own: a SQLite file, or a fresh PostgreSQL schema."""
    yield from empty_database(request.param, tmp_path, "runtime")


@pytest.fixture
def store(store_url: str) -> Iterator[Engine]:
    """An engine on a database upgraded to the newest schema, disposed afterwards."""
    engine = make_engine(store_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def add_links(engine: Engine, count: int, connector: str = CONNECTOR) -> list[int]:
    """`count` clean links `w<i>` ↔ `e<i>`; their ids."""
    with session_scope(engine) as session:
        links = [
            Link(connector=connector, wix_account_id=f"w{i}", external_id=f"e{i}")
            for i in range(count)
        ]
        session.add_all(links)
        session.flush()
        return [int(link.id or 0) for link in links]


def link_row(engine: Engine, link_id: int) -> Link:
    with session_scope(engine) as session:
        row = session.get(Link, link_id)
        assert row is not None
        return row


def dirty_ids(engine: Engine) -> set[int]:
    """The ids of every dirty link."""
    with session_scope(engine) as session:
        found = session.execute(select(col(Link.id)).where(col(Link.dirty).is_(True)))
        return {int(i) for i in found.scalars()}


def inbox(engine: Engine) -> list[tuple[str, str, str | None]]:
    """(source, event id, entity) of every stored inbox event."""
    with session_scope(engine) as session:
        rows = session.execute(select(InboxEvent.source, InboxEvent.event_id, InboxEvent.entity_id))
        return [(str(s), str(e), n) for s, e, n in rows]


class StoreFault:
    """Makes the next `times` statements starting with `prefix` fail, as a lost database
    connection would: fault injection at the driver boundary, not a mock of syncd."""

    def __init__(self, engine: Engine, prefix: str, times: int = 1) -> None:
        self.prefix = prefix.upper()
        self.left = times
        event.listen(engine, "before_cursor_execute", self._before)

    def _before(self, conn: object, cursor: object, statement: str, *args: object) -> None:
        if self.left and statement.lstrip().upper().startswith(self.prefix):
            self.left -= 1
            raise StoreDown(f"injected failure of: {statement.split()[0]} ...")


class StoreDown(Exception):
    """The injected database failure."""


# -- remotes ------------------------------------------------------------------------------------


@dataclass
class Clock:
    """The emulators' clock: real time, or pinned to a moment tests choose."""

    pinned: datetime | None = None

    def __call__(self) -> datetime:
        return self.pinned or utcnow()

    def at(self, moment: datetime | None) -> None:
        self.pinned = moment


@dataclass
class Customer:
    """One person on both sides and the link between the two accounts."""

    wix_id: str
    square_id: str
    link_id: int


@dataclass
class Remotes:
    """Both emulated systems, syncd's clients for them, and a SQLite store."""

    clock: Clock
    wix_site: WixEmulator
    square: SquareEmulator
    engine: Engine
    wix_settings: WixSettings
    square_settings: SquareSettings

    def customer(self, number: int, *, balance: int = 100) -> Customer:
        """A customer with an account on each side, seeded an hour ago (so its seed entries
        are far behind any poll window), linked (bases unset) and clean."""
        email = f"customer{number}@example.com"
        phone = f"+1415555{number:04d}"
        pinned = self.clock.pinned
        self.clock.at(utcnow() - timedelta(hours=1))
        try:
            wix = self.wix_site.seed_accounts([{"email": email, "balance": balance}])[0]
            square = self.square.seed_accounts(
                [{"email": email, "phone": phone, "balance": balance}]
            )
        finally:
            self.clock.at(pinned)
        with session_scope(self.engine) as session:
            link = Link(connector=CONNECTOR, wix_account_id=wix["id"], external_id=square[0]["id"])
            session.add(link)
            session.flush()
            return Customer(wix["id"], square[0]["id"], int(link.id or 0))


@pytest.fixture
def remotes(tmp_path: Path) -> Iterator[Remotes]:
    """Both emulators on a clock that follows real time until a test pins it."""
    clock = Clock()
    wix_site = WixEmulator(
        seed=3, api_key=WIX_API_KEY, clock=clock, private_key_pem=WIX_SIGNING_KEY
    )
    wix_site.knobs.requests_per_minute = 0
    wix_site.activate()
    wix_site.webhooks.reset()  # tests see only the events they cause
    square = SquareEmulator(
        access_token=SQUARE_TOKEN,
        seed=4,
        clock=clock,
        signature_key=SIGNATURE_KEY,
        notification_url=HOOK_URL,
    )
    square.knobs.requests_per_minute = 0
    engine = open_store(f"sqlite:///{tmp_path / 'syncd.db'}")
    wix_settings = WixSettings(
        base_url="http://wix",
        site_id=wix_site.credentials.site_id,
        api_key=SecretStr(WIX_API_KEY),
        webhook_public_key=wix_site.public_key_pem,
        requests_per_minute=100_000,
    )
    square_settings = SquareSettings(
        name=CONNECTOR,
        type="square",
        base_url="http://square",
        access_token=SecretStr(SQUARE_TOKEN),
        webhook_signature_key=SecretStr(SIGNATURE_KEY),
        webhook_url=HOOK_URL,
        requests_per_minute=100_000,
    )
    yield Remotes(clock, wix_site, square, engine, wix_settings, square_settings)
    engine.dispose()


@dataclass
class Clients:
    """syncd's clients of the two emulators."""

    wix: WixClient
    connector: SquareConnector


@pytest.fixture
async def clients(remotes: Remotes) -> AsyncIterator[Clients]:
    async with (
        WixClient(remotes.wix_settings, transport=httpx.ASGITransport(remotes.wix_site.app)) as wix,
        SquareConnector(
            remotes.square_settings, transport=httpx.ASGITransport(remotes.square.app)
        ) as connector,
    ):
        yield Clients(wix, connector)


# -- the daemon's app ----------------------------------------------------------------------


@dataclass
class Site:
    """A daemon between the two emulators, its app reached in process, one linked customer."""

    remotes: Remotes
    clients: Clients
    daemon: Daemon
    http: httpx.AsyncClient
    anna: Customer

    def deliver_to_daemon(self, *, raise_app_exceptions: bool = True) -> None:
        """Point both emulators' webhook senders at the daemon's app."""
        for dispatcher, path in (
            (self.remotes.wix_site.webhooks, "/webhooks/wix"),
            (self.remotes.square.webhooks, f"/webhooks/{CONNECTOR}"),
        ):
            dispatcher.url = f"http://syncd{path}"
            dispatcher.transport = httpx.ASGITransport(
                self.daemon.app(), raise_app_exceptions=raise_app_exceptions
            )

    def wix_event(self) -> WebhookEvent:
        """A genuine signed event: the site changed anna's points."""
        self.remotes.wix_site.activity(self.anna.wix_id, "earn", 10)
        return self.remotes.wix_site.webhooks.events[-1]

    def square_body(self) -> str:
        """A genuine event body: a till sale on anna's Square account."""
        self.remotes.square.activity(self.anna.square_id, "sale", 20)
        return self.remotes.square.webhooks.events[-1].body

    async def post_wix(self, body: bytes | str) -> httpx.Response:
        return await self.http.post(
            "/webhooks/wix", content=body, headers={"content-type": "text/plain"}
        )

    async def post_square(self, body: bytes | str, signature: str | None) -> httpx.Response:
        headers = {"content-type": "application/json"}
        if signature is not None:
            headers[SQUARE_HEADER] = signature
        return await self.http.post(f"/webhooks/{CONNECTOR}", content=body, headers=headers)

    def metric(self, name: str, source: str) -> float:
        return self.daemon.metrics.value(name, source=source)


@pytest.fixture
async def site(remotes: Remotes, clients: Clients) -> AsyncIterator[Site]:
    settings = Settings(
        database={"url": remotes.engine.url.render_as_string(hide_password=False)},
        wix=remotes.wix_settings.model_dump(),
        sync={"drift_check_cron": ""},
        server={"host": "127.0.0.1", "port": free_port()},
        connectors=[remotes.square_settings.model_dump()],
    )
    daemon = Daemon(settings, remotes.engine, clients.wix, {CONNECTOR: clients.connector})
    anna = remotes.customer(1)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(daemon.app()), base_url="http://syncd"
    ) as http:
        yield Site(remotes, clients, daemon, http, anna)
