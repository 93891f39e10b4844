"""The HubSpot connector's harness: the HubSpot emulator on a localhost port."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from pydantic import SecretStr

from connectors.base import Connector
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.emulator import HubSpotEmulator
from connectors.hubspot.settings import HubSpotSettings
from syncd.sandbox.server import serve_in_thread
from tests.contract.base import HOOK_URL, Harness

CLIENT_SECRET = "contract-secret"


class HubSpotHarness(Harness):
    name = "hubspot"

    def __init__(self) -> None:
        self.emulator = HubSpotEmulator(seed=37, client_secret=CLIENT_SECRET, target_url=HOOK_URL)
        self.emulator.knobs.requests_per_ten_seconds = 0
        self.emulator.knobs.search_requests_per_second = 0
        self.emulator.knobs.daily_limit = 0
        self._server = serve_in_thread(self.emulator.app)

    def close(self) -> None:
        self._server.stop()

    @contextlib.asynccontextmanager
    async def connector(self, *, wrong_credentials: bool = False) -> AsyncIterator[Connector]:
        settings = HubSpotSettings(
            name="contract",
            type="hubspot",
            base_url=self._server.url,
            access_token=SecretStr("wrong" if wrong_credentials else self.emulator.access_token),
            client_secret=SecretStr(CLIENT_SECRET),
            webhook_url=HOOK_URL,
            requests_per_minute=100_000,
            search_requests_per_second=100,
            timeout_seconds=2,
        )
        async with HubSpotConnector(settings) as connector:
            if not wrong_credentials:
                await connector.prepare()  # the operation property syncd writes beside points
            yield connector

    def seed(self, email: str, phone: str, balance: int) -> str:
        made = self.emulator.seed_contacts([{"email": email, "phone": phone, "balance": balance}])
        return str(made[0]["id"])

    def balance(self, account_id: str) -> int:
        return self.emulator.points(account_id) or 0

    def source_change(self, account_id: str, points: int) -> None:
        self.emulator.add_points(account_id, points)

    def fail_after_commit(self, on: bool) -> None:
        self.emulator.knobs.faults.fail_after_commit_rate = 1.0 if on else 0.0

    def signed_webhook(self) -> tuple[bytes, dict[str, str]]:
        body = self.emulator.webhooks.batches[-1].body
        return body.encode(), self.emulator.webhooks.headers_for(body)
