"""The matcher with several spokes: a customer new at one spoke reaches every other spoke."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import select

from connectors.square.connector import SquareConnector
from connectors.square.emulator import SquareEmulator
from syncd.clock import utcnow
from syncd.runtime.dirty import record_change
from syncd.runtime.matcher import PENDING, Matcher
from syncd.store.db import session_scope
from syncd.store.models import Link
from syncd.wix.client import WixClient
from tests.runtime.conftest import CONNECTOR, Remotes

pytestmark = pytest.mark.anyio
OTHER = "kiosk"


async def test_a_customer_new_at_one_spoke_is_created_at_the_others(remotes: Remotes) -> None:
    """New at the till (create_missing wix): Wix gets the account, and the second spoke
    (create_missing external) gets one too, each linked — surviving a restart in between
    because the hand-over is an inbox row written with the first link."""
    kiosk = SquareEmulator(access_token="kiosk-token", seed=9)
    kiosk.knobs.requests_per_minute = 0
    shop_settings = remotes.square_settings.model_copy(update={"create_missing": "wix"})
    kiosk_settings = remotes.square_settings.model_copy(
        update={
            "name": OTHER,
            "access_token": SecretStr("kiosk-token"),
            "create_missing": "external",
        }
    )
    new = {"email": "new@example.com", "phone": "+14155550123"}
    [account] = remotes.square.seed_accounts([new])
    record_change(
        remotes.engine,
        source=CONNECTOR,
        event_id="e-new",
        event_type="loyalty.account.created",
        now=utcnow(),
        connector=CONNECTOR,
        external_id=account["id"],
    )
    async with (
        WixClient(remotes.wix_settings, transport=httpx.ASGITransport(remotes.wix_site.app)) as wix,
        SquareConnector(shop_settings, transport=httpx.ASGITransport(remotes.square.app)) as shop,
        SquareConnector(kiosk_settings, transport=httpx.ASGITransport(kiosk.app)) as other,
    ):
        links = {CONNECTOR: shop, OTHER: other}
        assert await Matcher(remotes.engine, wix, links).run() == 1
        assert kiosk.accounts() == []
        assert await Matcher(remotes.engine, wix, links).run() == 1  # a fresh process
    with session_scope(remotes.engine) as session:
        made = {link.connector: link for link in session.exec(select(Link)).all()}
    assert set(made) == {CONNECTOR, OTHER}
    assert made[CONNECTOR].wix_account_id == made[OTHER].wix_account_id
    [created] = kiosk.accounts()
    assert made[OTHER].external_id == created["id"]
    assert created["mapping"]["phone_number"] == "+14155550123"


async def test_a_creation_cut_short_is_finished_with_the_same_account(remotes: Remotes) -> None:
    """A process that stopped between creating a Square account for a new Wix customer and
    linking it leaves a pending link; the next run links that very account as created by
    syncd (bases 0/0, so the customer's 50 Wix points go to Square) — not as one found
    there, which would start it under the initial policy and could take Wix's points."""
    shop_settings = remotes.square_settings.model_copy(update={"create_missing": "external"})
    [wix] = remotes.wix_site.seed_accounts(
        [{"email": "cut@example.com", "phone": "+14155550177", "balance": 50}]
    )
    key = f"create-for-wix-{wix['id']}"
    async with (
        WixClient(remotes.wix_settings, transport=httpx.ASGITransport(remotes.wix_site.app)) as w,
        SquareConnector(shop_settings, transport=httpx.ASGITransport(remotes.square.app)) as shop,
    ):
        with session_scope(remotes.engine) as session:
            session.add(
                Link(
                    connector=CONNECTOR,
                    wix_account_id=wix["id"],
                    external_id=PENDING + key,
                    wix_base=0,
                    ext_base=0,
                )
            )
        made = await shop.create_account(
            email="cut@example.com", phone="+14155550177", name=None, key=key
        )  # ... and then the process stopped
        assert await Matcher(remotes.engine, w, {CONNECTOR: shop}).run() == 1
    with session_scope(remotes.engine) as session:
        [link] = session.exec(select(Link)).all()
    assert (link.external_id, link.wix_base, link.ext_base, link.dirty) == (made.id, 0, 0, True)
    assert [a["id"] for a in remotes.square.accounts()] == [made.id]
