"""What a connector's harness offers the contract suite: its emulator on a localhost port, a
connector configured for it, and the few moves the contract needs (seed a customer, change a
balance at the source, sign a webhook, break the credentials). A new connector is done when it
passes the contract with its harness added to HARNESSES (`harnesses.py`)."""

from __future__ import annotations

import abc
import contextlib

from connectors.base import Connector

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
