"""Stage both sides: page every account into the database, resumably.

Each page is written in one transaction together with the cursor that follows it, so a
reconcile killed while paging resumes after the last page it kept. The run's progress lives in
one `cursors` row (`reconcile:<connector>`), as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from sqlalchemy import delete, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from connectors.base import Connector
from syncd.clock import utcnow
from syncd.errors import SkipError
from syncd.progress import Progress
from syncd.reconcile.keys import email_key, phone_key
from syncd.store.db import session_scope, upsert
from syncd.store.models import Cursor, ReconcilePair, StagedAccount, StagedContact
from syncd.wix.client import WixClient

WIX, EXTERNAL = "wix", "external"
CONTACTS_PAGE = 1000
FLUSH_ROWS = 1000  # staged rows written in one transaction
T = TypeVar("T")


@dataclass
class RunState:
    """Where one reconcile run of one connector stands."""

    phase: str = "staging"  # staging → applying → done
    started_at: str = field(default_factory=lambda: utcnow().isoformat())
    wix_cursor: str | None = None
    wix_done: bool = False
    contacts_offset: int = 0
    contacts_done: bool = False
    ext_cursor: str | None = None
    ext_done: bool = False
    matched: bool = False


def state_key(connector: str) -> str:
    return f"reconcile:{connector}"


def load_state(engine: Engine, connector: str) -> RunState | None:
    with session_scope(engine) as session:
        row = session.get(Cursor, state_key(connector))
        return RunState(**json.loads(row.value)) if row else None


def save_state(session: Session, connector: str, state: RunState) -> None:
    upsert(session, Cursor, [{"name": state_key(connector), "value": json.dumps(asdict(state))}])


def start_run(engine: Engine, connector: str, *, fresh: bool) -> tuple[RunState, bool]:
    """The run to work on: the unfinished one (unless `fresh`), or a new one with empty
    staging. True when an unfinished run is resumed."""
    state = load_state(engine, connector)
    if state is not None and state.phase != "done" and not fresh:
        return state, True
    state = RunState()
    with session_scope(engine) as session:
        session.execute(delete(StagedAccount).where(col(StagedAccount.connector) == connector))
        session.execute(delete(ReconcilePair).where(col(ReconcilePair.connector) == connector))
        session.execute(delete(StagedContact))
        save_state(session, connector, state)
    return state, False


def finish_run(engine: Engine, connector: str, state: RunState) -> None:
    state.phase = "done"
    with session_scope(engine) as session:
        save_state(session, connector, state)


async def stage_wix(engine: Engine, wix: WixClient, connector: str, state: RunState) -> None:
    """Every Wix loyalty account, 100 a page."""
    if state.wix_done:
        return
    kept = _Kept(engine, connector, state, "wix_cursor")
    async for page in ahead(wix.iter_accounts(cursor=state.wix_cursor)):
        kept.add(
            [
                _row(WIX, connector, a.id, a.balance, str(a.revision), email=a.email, name=a.name)
                | {"contact_id": a.contact_id}
                for a in page.items
            ],
            page.cursor,
        )
    state.wix_done = True
    kept.flush()


async def stage_contacts(engine: Engine, wix: WixClient, connector: str, state: RunState) -> None:
    """Phones of Wix contacts (loyalty accounts carry none), then copied onto the accounts."""
    if not state.contacts_done:
        while True:
            contacts, total = await wix.query_contacts(
                offset=state.contacts_offset, limit=CONTACTS_PAGE
            )
            rows = [
                {
                    "contact_id": c.id,
                    "email": email_key(c.emails[0] if c.emails else None),
                    "phone": next((p for p in map(phone_key, c.phones) if p), None),
                }
                for c in contacts
            ]
            state.contacts_offset += len(contacts)
            last = not contacts or (total is not None and state.contacts_offset >= total)
            state.contacts_done = last
            with session_scope(engine) as session:
                upsert(session, StagedContact, rows)
                save_state(session, connector, state)
            if last:
                break
    with session_scope(engine) as session:
        session.execute(
            text(
                "UPDATE reconcile_accounts SET phone = (SELECT c.phone FROM reconcile_contacts c"
                " WHERE c.contact_id = reconcile_accounts.contact_id)"
                " WHERE side = :side AND connector = :connector AND phone IS NULL"
            ),
            {"side": WIX, "connector": connector},
        )


async def stage_external(
    engine: Engine, connector: Connector, state: RunState, progress: Progress | None = None
) -> None:
    """Every account of the connector, page by page."""
    if state.ext_done:
        return
    kept = _Kept(engine, connector.name, state, "ext_cursor")
    try:
        async for page in ahead(connector.iter_accounts(state.ext_cursor)):
            rows = [
                _row(
                    EXTERNAL,
                    connector.name,
                    a.id,
                    a.balance,
                    a.version,
                    email=a.email,
                    phone=a.phone,
                    name=a.name,
                )
                for a in page.accounts
            ]
            kept.add(rows, page.cursor)
            if progress:
                progress.advance(len(rows))
    except SkipError:
        if state.ext_cursor is None:
            raise
        state.ext_cursor = None  # the saved cursor expired: page again from the start
        await stage_external(engine, connector, state, progress)
        return
    state.ext_done = True
    kept.flush()


class _Kept:
    """Staged rows of a few pages, written in one transaction with the cursor that follows
    the last of them: a run stopped anywhere resumes after the last pages it wrote (one
    transaction a page made SQLite's commits a tenth of a backfill's work)."""

    def __init__(self, engine: Engine, connector: str, state: RunState, cursor: str) -> None:
        self.engine, self.connector, self.state, self.cursor = engine, connector, state, cursor
        self.rows: list[dict[str, Any]] = []
        self.after: str | None = getattr(state, cursor)

    def add(self, rows: list[dict[str, Any]], cursor: str | None) -> None:
        self.rows += rows
        self.after = cursor
        if len(self.rows) >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        # The state's cursor moves only here, with its rows: the other side saves the same
        # state object and must never record this side ahead of what is written.
        setattr(self.state, self.cursor, self.after)
        with session_scope(self.engine) as session:
            upsert(session, StagedAccount, self.rows)
            save_state(session, self.connector, self.state)
        self.rows = []


async def ahead(pages: AsyncIterator[T]) -> AsyncIterator[T]:
    """The same pages, the next one already on its way while the caller stores this one
    (a page's wait overlaps the work on the one before; still one request at a time)."""
    pending = asyncio.ensure_future(anext(pages))
    try:
        while True:
            try:
                page = await pending
            except StopAsyncIteration:
                return
            pending = asyncio.ensure_future(anext(pages))
            yield page
    finally:
        pending.cancel()
        with contextlib.suppress(BaseException):
            await pending  # a cancelled fetch ends the pages' generator with it


def _row(
    side: str,
    connector: str,
    account_id: str,
    balance: int,
    revision: str | None,
    *,
    email: str | None = None,
    phone: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    return {
        "side": side,
        "connector": connector,
        "account_id": account_id,
        "contact_id": None,
        "email": email_key(email),
        "phone": phone_key(phone),
        "name": name,
        "balance": balance,
        "revision": revision,
        "staged_at": utcnow(),
    }
