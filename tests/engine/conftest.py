"""An applier wired to in-process Wix and Square emulators and a fresh SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from connectors.square.connector import SquareConnector
from connectors.square.emulator import SquareEmulator
from connectors.square.settings import SquareSettings
from syncd.engine.applier import Applier
from syncd.engine.outbox import Outbox
from syncd.engine.rules import Policy
from syncd.sandbox.wix import WixEmulator
from syncd.settings import WixSettings
from syncd.store.db import open_store, session_scope
from syncd.store.models import Link
from syncd.wix.client import WixClient

CONNECTOR = "shop"


@dataclass
class World:
    """Both emulated systems, the store, and an applier between them."""

    wix_site: WixEmulator
    square: SquareEmulator
    engine: Engine
    wix: WixClient
    connector: SquareConnector
    applier: Applier

    def link(self, email: str, wix_balance: int, ext_balance: int, phone: str) -> int:
        """A customer on both sides and an (unsynced) link between them."""
        wix = self.wix_site.seed_accounts([{"email": email, "balance": wix_balance}])[0]
        ext = self.square.seed_accounts([{"email": email, "phone": phone, "balance": ext_balance}])[
            0
        ]
        with session_scope(self.engine) as session:
            link = Link(connector=CONNECTOR, wix_account_id=wix["id"], external_id=ext["id"])
            session.add(link)
            session.flush()
            assert link.id is not None
            return link.id

    def balances(self, link_id: int) -> tuple[int, int]:
        link = Outbox(self.engine).link(link_id)
        wix = next(a for a in self.wix_site.state.all_accounts() if a["id"] == link.wix_account_id)
        return int(wix["points"]["balance"]), int(self.square.account(link.external_id)["balance"])


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    wix_site = WixEmulator(seed=1)
    wix_site.activate()
    square = SquareEmulator(seed=2)
    engine = open_store(f"sqlite:///{tmp_path / 'syncd.db'}")
    wix_settings = WixSettings(
        base_url="http://wix",
        site_id=wix_site.credentials.site_id,
        api_key=SecretStr(wix_site.credentials.api_key),
        requests_per_minute=100_000,
    )
    square_settings = SquareSettings(
        name=CONNECTOR,
        type="square",
        base_url="http://square",
        access_token=SecretStr(square.access_token),
        requests_per_minute=100_000,
    )
    async with (
        WixClient(wix_settings, transport=httpx.ASGITransport(wix_site.app)) as wix,
        SquareConnector(square_settings, transport=httpx.ASGITransport(square.app)) as connector,
    ):
        applier = Applier(Outbox(engine), wix, connector, Policy())
        yield World(wix_site, square, engine, wix, connector, applier)
    engine.dispose()
