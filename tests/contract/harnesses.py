"""One harness per connector: its emulator on a localhost port, a connector configured for it,
and the few moves the contract needs (seed a customer, change a balance at the source, sign a
webhook, break the credentials). A new connector is done when it passes the contract with its
harness added to HARNESSES."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import AsyncIterator, Callable

from pydantic import SecretStr

from connectors.base import Connector
from connectors.square.connector import SquareConnector
from connectors.square.emulator import SquareEmulator
from connectors.square.settings import SquareSettings
from syncd.sandbox.server import serve_in_thread

HOOK_URL = "https://syncd.example.com/webhooks/contract"


class Harness(abc.ABC):
    name: str

    @abc.abstractmethod
    def connector(
        self, *, wrong_credentials: bool = False
    ) -> contextlib.AbstractAsyncContextManager[Connector]:
        """A connector for the served emulator (or with credentials the emulator refuses)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop the emulator's server."""

    @abc.abstractmethod
    def seed(self, email: str, phone: str, balance: int) -> str:
        """A customer with an account on the external side; its id."""

    @abc.abstractmethod
    def balance(self, account_id: str) -> int:
        """The account's balance as the emulator holds it."""

    @abc.abstractmethod
    def source_change(self, account_id: str, points: int) -> None:
        """A change made at the source (a till sale), as a customer would."""

    @abc.abstractmethod
    def fail_after_commit(self, on: bool) -> None:
        """Apply writes, then answer 500 (the answer is lost)."""

    @abc.abstractmethod
    def signed_webhook(self) -> tuple[bytes, dict[str, str]]:
        """A genuine webhook of the last change: raw body and headers."""


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


HARNESSES: dict[str, Callable[[], Harness]] = {"square": SquareHarness}
