"""The Square connector's harness: the Square emulator on a localhost port."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from pydantic import SecretStr

from connectors.base import Connector
from connectors.square.connector import SquareConnector
from connectors.square.emulator import SquareEmulator
from connectors.square.settings import SquareSettings
from syncd.sandbox.server import serve_in_thread
from tests.contract.base import HOOK_URL, Harness


class SquareHarness(Harness):
    name = "square"

    def __init__(self) -> None:
        self.emulator = SquareEmulator(
            seed=31, signature_key="contract-key", notification_url=HOOK_URL
        )
        self.emulator.knobs.requests_per_minute = 0
        self._server = serve_in_thread(self.emulator.app)

    def close(self) -> None:
        self._server.stop()

    @contextlib.asynccontextmanager
    async def connector(self, *, wrong_credentials: bool = False) -> AsyncIterator[Connector]:
        settings = SquareSettings(
            name="contract",
            type="square",
            base_url=self._server.url,
            access_token=SecretStr("wrong" if wrong_credentials else self.emulator.access_token),
            webhook_signature_key=SecretStr("contract-key"),
            webhook_url=HOOK_URL,
            requests_per_minute=100_000,
            timeout_seconds=2,
        )
        async with SquareConnector(settings) as connector:
            yield connector

    def seed(self, email: str, phone: str, balance: int) -> str:
        return str(
            self.emulator.seed_accounts([{"email": email, "phone": phone, "balance": balance}])[0][
                "id"
            ]
        )

    def balance(self, account_id: str) -> int:
        return int(self.emulator.account(account_id)["balance"])

    def source_change(self, account_id: str, points: int) -> None:
        self.emulator.activity(account_id, "sale", points)

    def fail_after_commit(self, on: bool) -> None:
        self.emulator.knobs.faults.fail_after_commit_rate = 1.0 if on else 0.0

    def signed_webhook(self) -> tuple[bytes, dict[str, str]]:
        event = self.emulator.webhooks.events[-1]
        body = event.body
        return body.encode(), {
            "x-square-hmacsha256-signature": self.emulator.webhooks.signature_for(body)
        }
