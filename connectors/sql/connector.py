"""The `sql` connector: a POS or membership database, reached by a SQLAlchemy URL, as a spoke.

Behaviour chosen where the interface leaves room:
- Two modes (`mode`): `ledger` inserts one row per write into the points ledger, the key
  column holding the operation id (unique: a replay changes nothing); `column` updates the
  accounts table's points column with a compare-and-set and records the operation id in
  syncd's own `applied_table` in the same transaction. Both are delta writes with keys.
- Account ids are the id column's values as text; `iter_accounts` pages by id (keyset: the
  cursor is the last id), one query a page with the balance joined. An id the column cannot
  hold (text for an integer column) is simply not found.
- `find_accounts("email")` compares lower-cased and trimmed; `find_accounts("phone")`
  compares in E.164, however the till wrote the number. A mode without that column finds
  nothing.
- `create_account` inserts a member row (email, phone, name; points 0 in column mode) and
  records `key` in the applied table in the same transaction; a replay returns the account
  made the first time. A row the database refuses (a unique email, a required column syncd
  has no value for) is a SkipError — a DuplicateError naming the account when the email is
  taken.
- `read_back` is a lookup of the key (ledger key column, or applied table): `since` is not
  needed.
- `changes_since`: see `changes.py` (timestamps with an overlap, or a balance snapshot).
- No webhooks: a database does not call back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from functools import partial

from connectors.base import (
    AccountPage,
    Capabilities,
    ChangesPage,
    Connector,
    ExternalAccount,
    ReadBack,
    ReadBackResult,
    WriteResult,
    settings_as,
)
from connectors.sql import changes, statements
from connectors.sql.client import SqlClient
from connectors.sql.mapping import IntegrityRefused
from connectors.sql.settings import SqlSettings
from syncd.clock import utcnow
from syncd.errors import DuplicateError, RetriableError, SkipError
from syncd.retry import RetryPolicy
from syncd.settings import ConnectorSettings


class SqlConnector(Connector):
    """A database table of accounts: ledger rows or a points column, written with keys."""

    settings_model = SqlSettings
    capabilities = Capabilities(
        delta_writes=True,
        idempotency_keys=True,
        webhooks=False,
        change_feed=True,
        find_by=frozenset({"email", "phone"}),
        create_accounts=True,
    )

    def __init__(self, settings: ConnectorSettings, *, retry: RetryPolicy | None = None) -> None:
        sql = settings_as(SqlSettings, settings)
        super().__init__(sql)
        self.sql = sql
        self.client = SqlClient(sql, retry=retry)

    async def aclose(self) -> None:
        await self.client.aclose()

    @property
    def calls(self) -> int:
        """SQL statements sent so far."""
        return self.client.statements

    async def prepare(self) -> list[str]:
        """Check every configured table and column (FatalError naming what is missing) and
        create syncd's own tables when `create_tables` allows; one line per table created."""
        return await self.client.prepare()

    # -- reading -------------------------------------------------------------------------------

    async def iter_accounts(self, cursor: str | None = None) -> AsyncIterator[AccountPage]:
        """Every account in id order, `page_size` a page; a page's cursor is its last id."""
        while True:
            page = partial(statements.accounts_page, after=cursor, size=self.sql.page_size)
            accounts, cursor = await self.client.run(page)
            yield AccountPage(accounts, cursor)
            if cursor is None:
                return

    async def get_account(self, account_id: str) -> ExternalAccount:
        """One account read fresh: balance, match keys, version."""
        read = partial(statements.one_account, account_id=account_id)
        return await self.client.run(read, account=account_id)

    async def find_accounts(self, key: str, value: str) -> list[ExternalAccount]:
        """Accounts whose email (any case) or phone (E.164) equals `value`."""
        if key not in ("email", "phone"):
            raise ValueError(f"sql cannot find accounts by {key!r}: use 'email' or 'phone'")
        return await self.client.run(partial(statements.find_accounts, key=key, value=value))

    # -- writing -------------------------------------------------------------------------------

    async def create_account(
        self, *, email: str | None, phone: str | None, name: str | None, key: str
    ) -> ExternalAccount:
        """A member row with balance 0, made at most once for `key`."""
        make = partial(
            statements.create_account,
            email=email.strip().lower() if email else None,
            phone=phone,
            name=name,
            key=key,
            now=utcnow(),
        )
        try:
            return await self.client.run(make, write=True)
        except IntegrityRefused as refused:
            existing = await self.find_accounts("email", email) if email else []
            if existing:
                raise DuplicateError(
                    f"{email} already has an account ({refused.reason})",
                    existing_id=existing[0].id,
                    remote=self.name,
                ) from None
            raise SkipError(
                f"the database refused the new account ({refused.reason})", remote=self.name
            ) from None

    async def apply_delta(
        self, account_id: str, delta: int, *, key: str, reason: str
    ) -> WriteResult:
        """Add `delta` under the operation id `key`: a ledger row, or a compare-and-set of the
        points column (ConflictError when the till changed the account in between)."""
        if delta == 0:
            raise ValueError("apply_delta needs a non-zero delta")
        tag = f"syncd:{key}"
        if not reason.startswith(tag):
            reason = f"{tag} {reason}".rstrip()
        now = utcnow()
        if self.sql.mode == "ledger":
            write = partial(
                statements.apply_ledger,
                account_id=account_id,
                delta=delta,
                key=key,
                reason=reason,
                now=now,
            )
        else:
            write = partial(
                statements.apply_column, account_id=account_id, delta=delta, key=key, now=now
            )
        try:
            return await self.client.run(write, write=True, account=account_id)
        except IntegrityRefused as refused:
            # A racing replay got there first (the key is unique), or the row was refused.
            found = await self.client.run(partial(statements.read_back, key=key))
            if found.outcome is ReadBack.APPLIED:
                return WriteResult(found.remote_id)
            await self.get_account(account_id)  # NotFoundError when the account is gone
            raise SkipError(
                f"the database refused the write ({refused.reason})",
                remote=self.name,
                account=account_id,
            ) from None

    async def read_back(self, account_id: str, *, key: str, since: datetime) -> ReadBackResult:
        """APPLIED when the key is in the ledger (ledger mode) or the applied table."""
        return await self.client.run(partial(statements.read_back, key=key), account=account_id)

    async def changes_since(self, cursor: str | None) -> ChangesPage:
        """Accounts the till changed since `cursor` (None: start now), syncd's writes left out."""
        if self.sql.changes == "snapshot":
            feed = changes.snapshot_changes
        elif self.sql.mode == "ledger":
            feed = changes.ledger_changes
        else:
            feed = changes.column_changes
        try:
            return await self.client.run(
                partial(feed, cursor=cursor), write=self.sql.changes == "snapshot"
            )
        except IntegrityRefused as refused:
            # Two pollers wrote the same snapshot rows at once: the next poll sorts it out.
            raise RetriableError(
                f"the snapshot changed under this poll ({refused.reason})", remote=self.name
            ) from None
