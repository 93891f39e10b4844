"""The sql connector's harnesses: a demo POS database (SQLite file or PostgreSQL schema) and
its till, in ledger mode and in column mode."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from connectors.base import Connector
from connectors.sql.connector import SqlConnector
from connectors.sql.emulator import SqlTill
from connectors.sql.settings import Mode, SqlSettings
from tests.contract.base import Harness
from tests.databases import POSTGRES_ENV, postgres_schema

PAGE_SIZE = 200  # the contract seeds 450 accounts and wants more than one page


class SqlHarness(Harness):
    def __init__(self, backend: str, mode: Mode) -> None:
        self.name = f"sql-{backend}" + ("-column" if mode == "column" else "")
        self._cleanup = contextlib.ExitStack()
        if backend == "postgres":
            base = os.environ.get(POSTGRES_ENV)
            if not base:
                pytest.skip(f"{POSTGRES_ENV} is not set: the {self.name} contract is skipped")
            schema = postgres_schema(base)
            url = next(schema)
            self._cleanup.callback(schema.close)  # drops the schema
            self._refused = (
                make_url(url)
                .set(username="syncd_contract_no_such_role", password="wrong-password")
                .render_as_string(hide_password=False)
            )
        else:
            folder = Path(self._cleanup.enter_context(tempfile.TemporaryDirectory()))
            url = f"sqlite:///{folder / 'pos.db'}"
            self._refused = f"sqlite:///{folder / 'missing' / 'pos.db'}"  # cannot be opened
        self.till = SqlTill(url, mode)
        self._cleanup.callback(self.till.close)

    def close(self) -> None:
        self._cleanup.close()

    @contextlib.asynccontextmanager
    async def connector(self, *, wrong_credentials: bool = False) -> AsyncIterator[Connector]:
        values = self.till.connector_settings("contract", page_size=PAGE_SIZE)
        if wrong_credentials:
            values["url"] = self._refused
        async with SqlConnector(SqlSettings.model_validate(values)) as connector:
            yield connector

    def seed(self, email: str, phone: str, balance: int) -> str:
        return self.till.seed([{"email": email, "phone": phone, "balance": balance}])[0]

    def balance(self, account_id: str) -> int:
        return self.till.balance(account_id)

    def source_change(self, account_id: str, points: int) -> None:
        self.till.sale(account_id, points)

    def fail_after_commit(self, on: bool) -> None:
        self.till.fail_after_commit(on)

    def signed_webhook(self) -> tuple[bytes, dict[str, str]]:
        return b"{}", {}  # a database sends no webhooks (the connector says so: skipped)
