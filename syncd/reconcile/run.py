"""`syncd --reconcile`: stage both sides, match, create what is missing, plan, apply, report.

Writes go through the same applier as the daemon, so a run killed at any line and run again
continues without repeating a write: unresolved operations are read back first, links keep
their bases, and a pair whose link moved since it was staged is read fresh before planning.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlmodel import col, select

import connectors
from connectors.base import Connector, ExternalAccount
from syncd.budget import Priority, spending
from syncd.engine.applier import Applier
from syncd.engine.outbox import Outbox
from syncd.engine.rules import (
    Absorb,
    AdjustExternal,
    AdjustWix,
    Bases,
    OpenConflict,
    Policy,
    decide,
)
from syncd.errors import PreconditionError, SkipError, SyncdError
from syncd.logs import event, get_logger
from syncd.names import split_name
from syncd.progress import Progress
from syncd.reconcile.matching import Matching, match, pair_counts
from syncd.reconcile.report import PlanRow, Report, write_plan
from syncd.reconcile.staging import (
    EXTERNAL,
    WIX,
    RunState,
    finish_run,
    save_state,
    stage_contacts,
    stage_external,
    stage_wix,
    start_run,
)
from syncd.runtime.pollers import start_cursors
from syncd.settings import ConnectorSettings, Settings
from syncd.store.db import open_store, session_scope
from syncd.store.models import Conflict, ConflictStatus, Link, ReconcilePair, StagedAccount
from syncd.wix.client import WixClient
from syncd.wix.models import Account

log = get_logger(__name__)

WORKERS = 8
CHUNK = 500


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    plan_file: Path | None = None
    force: bool = False


@dataclass(frozen=True)
class _Pair:
    link_id: int | None
    wix: StagedAccount
    ext: StagedAccount
    matched_by: str
    bases: Bases
    trusted: bool  # the staged balances still describe the link (it was not synced since)


def policy_for(settings: Settings, connector: ConnectorSettings) -> Policy:
    sync = settings.sync
    return Policy(
        conflict=sync.conflict_policy,
        initial=sync.initial_policy,
        negative=sync.negative_policy,
        max_auto_delta=sync.max_auto_delta,
        direction=connector.direction,
    )


async def reconcile_all(settings: Settings, options: Options) -> list[Report]:
    """Reconcile every configured connector with the Wix site, one after the other."""
    engine = open_store(settings.database.url)
    reports = []
    try:
        async with WixClient(settings.wix) as wix:
            for typed in connectors.typed_settings(settings):
                async with connectors.create(typed) as connector:
                    reports.append(await reconcile(engine, settings, wix, connector, options))
    finally:
        engine.dispose()
    return reports


async def reconcile(
    engine: Engine, settings: Settings, wix: WixClient, connector: Connector, options: Options
) -> Report:
    """One connector's backfill; its requests wait behind live syncs for the API budget."""
    with spending(Priority.BACKFILL):
        return await _reconcile(engine, settings, wix, connector, options)


async def _reconcile(
    engine: Engine, settings: Settings, wix: WixClient, connector: Connector, options: Options
) -> Report:
    started = time.monotonic()
    calls_before, ext_calls_before = wix.calls, connector.calls
    report = Report(connector.name, options.dry_run)
    policy = policy_for(settings, connector.settings)
    applier = Applier(Outbox(engine), wix, connector, policy)
    if not options.dry_run:
        program = await wix.get_program()
        if not program.active:
            raise PreconditionError(
                f"the loyalty program is {program.status}: points can only move while it is "
                "ACTIVE; activate it in the site's dashboard and run again",
                remote="wix",
            )
        for created in await connector.prepare():
            event(log, "connector.prepared", connector=connector.name, created=created)
        await start_cursors(engine, connector)
        await applier.recover()
    state, report.resumed = start_run(engine, connector.name, fresh=options.dry_run)
    await _stage(engine, wix, connector, state)
    matching = match(engine, connector.name, connector.settings.match_on)
    _count_staged(engine, connector.name, report, matching)
    if not options.dry_run and not state.matched:
        await _create_missing(engine, wix, connector, matching, report)
        _link_new_pairs(engine, connector.name)
        state.matched, state.phase = True, "applying"
        with session_scope(engine) as session:
            save_state(session, connector.name, state)
    run_started = datetime.fromisoformat(state.started_at)
    rows = [_plan_row(pair, policy) for pair in _pairs(engine, connector.name, run_started)]
    with session_scope(engine) as session:
        report.linked = pair_counts(session, connector.name)
    brake = _brake(rows, settings.sync.max_changed_fraction)
    if brake and not options.force:
        report.stopped = brake + "; check the plan with --dry-run, then run again with --force"
    elif options.dry_run:
        _summarise(rows, report)
        _would_create(connector, matching, report)
        if options.plan_file:
            write_plan(options.plan_file, rows)
    else:
        await _apply(engine, applier, connector.name, run_started, report)
        finish_run(engine, connector.name, state)
    report.conflicts_open = _open_conflicts(engine, connector.name)
    report.wix_calls = wix.calls - calls_before
    report.external_calls = connector.calls - ext_calls_before
    report.seconds = time.monotonic() - started
    return report


async def find_drift(
    engine: Engine, settings: Settings, wix: WixClient, connector: Connector
) -> list[int]:
    """The daemon's drift check: page both sides (the cheapest full read) and return the
    links whose balances the rules would change — the daemon marks them dirty, its workers
    repair them. Writes nothing remote."""
    with spending(Priority.BACKFILL):
        state, _ = start_run(engine, connector.name, fresh=True)
        await _stage(engine, wix, connector, state)
        match(engine, connector.name, connector.settings.match_on)
        policy = policy_for(settings, connector.settings)
        run_started = datetime.fromisoformat(state.started_at)
        drifted = [
            pair.link_id
            for pair in _pairs(engine, connector.name, run_started)
            if pair.link_id is not None
            and pair.matched_by == "link"
            and not decide(pair.bases, pair.wix.balance, pair.ext.balance, policy).empty
        ]
        finish_run(engine, connector.name, state)
    return drifted


async def _stage(engine: Engine, wix: WixClient, connector: Connector, state: RunState) -> None:
    await stage_wix(engine, wix, connector.name, state)
    if "phone" in connector.settings.match_on:
        await stage_contacts(engine, wix, connector.name, state)
    await stage_external(engine, connector, state)


def _count_staged(engine: Engine, connector: str, report: Report, matching: Matching) -> None:
    with session_scope(engine) as session:
        for side, in_report in ((WIX, "wix_accounts"), (EXTERNAL, "ext_accounts")):
            count = session.exec(
                select(func.count()).where(
                    StagedAccount.side == side, StagedAccount.connector == connector
                )
            ).one()
            setattr(report, in_report, int(count))
    report.ambiguous = len(matching.ambiguous)
    report.wix_only = len(matching.wix_only)
    report.external_only = len(matching.external_only)
    report.missing = len(matching.missing)


async def _create_missing(
    engine: Engine, wix: WixClient, connector: Connector, matching: Matching, report: Report
) -> None:
    """Create the account missing on the other side, as `create_missing` asks; the new link
    starts at bases (0, 0), so the existing balance is carried to the new account."""
    mode = connector.settings.create_missing
    if mode in ("external", "both") and connector.capabilities.create_accounts:
        for account_id in list(matching.wix_only):
            staged = _staged(engine, WIX, connector.name, account_id)
            try:
                made = await connector.create_account(
                    email=staged.email,
                    phone=staged.phone,
                    name=staged.name,
                    key=f"create-for-wix-{account_id}",
                )
            except SkipError as error:
                report.not_created.append(f"wix {account_id}: {error}")
                continue
            _new_link(engine, connector.name, staged.account_id, staged.contact_id, made.id)
            _stage_created(engine, connector.name, EXTERNAL, made.id, made.balance, made.version)
            report.created_external += 1
            report.wix_only -= 1
    if mode in ("wix", "both"):
        for account_id in list(matching.external_only):
            staged = _staged(engine, EXTERNAL, connector.name, account_id)
            first, last = split_name(staged.name)
            contact_id, _ = await wix.create_contact(
                email=staged.email, phone=staged.phone, first_name=first, last_name=last
            )
            account, _ = await wix.ensure_account(contact_id)
            _new_link(engine, connector.name, account.id, contact_id, staged.account_id)
            _stage_created(
                engine, connector.name, WIX, account.id, account.balance, str(account.revision)
            )
            report.created_wix += 1
            report.external_only -= 1


def _would_create(connector: Connector, matching: Matching, report: Report) -> None:
    """For a dry run: how many accounts `create_missing` would create (at most)."""
    mode = connector.settings.create_missing
    if mode in ("wix", "both"):
        report.created_wix = len(matching.external_only)
    if mode in ("external", "both") and connector.capabilities.create_accounts:
        report.created_external = len(matching.wix_only)


def _staged(engine: Engine, side: str, connector: str, account_id: str) -> StagedAccount:
    with session_scope(engine) as session:
        row = session.get(StagedAccount, (side, connector, account_id))
        assert row is not None
        return row


def _stage_created(
    engine: Engine, connector: str, side: str, account_id: str, balance: int, revision: str | None
) -> None:
    with session_scope(engine) as session:
        session.merge(
            StagedAccount(
                side=side,
                connector=connector,
                account_id=account_id,
                balance=balance,
                revision=revision,
            )
        )


def _new_link(
    engine: Engine, connector: str, wix_id: str, contact_id: str | None, external_id: str
) -> None:
    """A link for a just-created account: bases (0, 0) carry the other side's balance over.
    (The new account is staged after this, so its staged balance is known to be current.)"""
    with session_scope(engine) as session:
        session.add(
            Link(
                connector=connector,
                wix_account_id=wix_id,
                wix_contact_id=contact_id,
                external_id=external_id,
                wix_base=0,
                ext_base=0,
            )
        )
        session.merge(
            ReconcilePair(
                connector=connector,
                wix_account_id=wix_id,
                external_id=external_id,
                matched_by="created",
            )
        )


def _link_new_pairs(engine: Engine, connector: str) -> None:
    """A link, still without bases, for every pair that matching found by a key."""
    with session_scope(engine) as session:
        rows = session.execute(
            text(
                "SELECT p.wix_account_id, w.contact_id, p.external_id FROM reconcile_pairs p"
                " JOIN reconcile_accounts w ON w.side = 'wix' AND w.connector = p.connector"
                "  AND w.account_id = p.wix_account_id"
                " WHERE p.connector = :c AND p.matched_by NOT IN ('link', 'created')"
                " AND NOT EXISTS (SELECT 1 FROM links l WHERE l.connector = :c"
                "  AND (l.wix_account_id = p.wix_account_id OR l.external_id = p.external_id))"
            ),
            {"c": connector},
        ).all()
        session.add_all(
            Link(connector=connector, wix_account_id=w, wix_contact_id=c, external_id=x)
            for w, c, x in rows
        )


def _pairs(
    engine: Engine, connector: str, run_started: datetime, *, pending_only: bool = False
) -> Iterator[_Pair]:
    """Every pair with its staged accounts and link, in chunks (keyset on the Wix id)."""
    after = ""
    while True:
        with session_scope(engine) as session:
            query = (
                select(ReconcilePair)
                .where(ReconcilePair.connector == connector)
                .where(col(ReconcilePair.wix_account_id) > after)
                .order_by(col(ReconcilePair.wix_account_id))
                .limit(CHUNK)
            )
            if pending_only:
                query = query.where(col(ReconcilePair.done).is_(False))
            chunk = session.exec(query).all()
            batch = [_pair(session, connector, p, run_started) for p in chunk]
        if not chunk:
            return
        yield from batch
        after = chunk[-1].wix_account_id


def _trusted(
    link: Link | None,
    pair: ReconcilePair,
    unstaged: bool,
    staged_at: datetime,
    run_started: datetime,
) -> bool:
    """Whether the staged balances still describe the pair, so no fresh read is needed: true
    unless its sync already began in this run (a resumed run), or its link moved since the
    accounts were staged (the daemon synced it meanwhile)."""
    if unstaged or pair.started:
        return False
    if link is None or link.wix_base is None or link.created_at >= run_started:
        return True  # never synced, or made by this run and not synced yet
    return link.updated_at <= staged_at


def _pair(session: object, connector: str, pair: ReconcilePair, run_started: datetime) -> _Pair:
    from sqlmodel import Session

    assert isinstance(session, Session)
    wix = session.get(StagedAccount, (WIX, connector, pair.wix_account_id))
    ext = session.get(StagedAccount, (EXTERNAL, connector, pair.external_id))
    unstaged = wix is None or ext is None  # killed between creating an account and staging it
    wix = wix or StagedAccount(
        side=WIX, connector=connector, account_id=pair.wix_account_id, balance=0
    )
    ext = ext or StagedAccount(
        side=EXTERNAL, connector=connector, account_id=pair.external_id, balance=0
    )
    link = session.exec(
        select(Link).where(Link.connector == connector, Link.wix_account_id == pair.wix_account_id)
    ).first()
    bases = Bases(link.wix_base, link.ext_base) if link else Bases(None, None)
    trusted = _trusted(link, pair, unstaged, min(wix.staged_at, ext.staged_at), run_started)
    return _Pair(link.id if link else None, wix, ext, pair.matched_by, bases, trusted)


def _plan_row(pair: _Pair, policy: Policy) -> PlanRow:
    plan = decide(pair.bases, pair.wix.balance, pair.ext.balance, policy)
    kinds = sorted(
        {a.conflict.value for a in plan.actions if isinstance(a, Absorb) and a.conflict}
        | {a.kind.value for a in plan.actions if isinstance(a, OpenConflict)}
    )
    return PlanRow(
        wix_account_id=pair.wix.account_id,
        external_id=pair.ext.account_id,
        matched_by=pair.matched_by,
        wix_balance=pair.wix.balance,
        ext_balance=pair.ext.balance,
        to_wix=sum(a.delta for a in plan.actions if isinstance(a, AdjustWix)),
        to_external=sum(a.delta for a in plan.actions if isinstance(a, AdjustExternal)),
        held=sum(a.amount for a in plan.actions if isinstance(a, Absorb) and a.conflict),
        conflicts=" ".join(kinds),
    )


def _brake(rows: list[PlanRow], fraction: float) -> str | None:
    """Refuse a run that would change too many accounts that were already in step."""
    linked = [r for r in rows if r.matched_by == "link"]
    changing = [r for r in linked if r.to_wix or r.to_external]
    if linked and len(changing) / len(linked) > fraction:
        return (
            f"the plan changes {len(changing)} of {len(linked)} already-linked accounts, more "
            f"than sync.max_changed_fraction ({fraction:.0%})"
        )
    return None


def _summarise(rows: list[PlanRow], report: Report) -> None:
    for row in rows:
        report.wix_adjusted += bool(row.to_wix)
        report.wix_points += row.to_wix
        report.ext_adjusted += bool(row.to_external)
        report.ext_points += row.to_external
        report.unchanged += not (row.to_wix or row.to_external)
        report.conflicts_opened += len(row.conflicts.split())


async def _apply(
    engine: Engine, applier: Applier, connector: str, run_started: datetime, report: Report
) -> None:
    pending = list(_pairs(engine, connector, run_started, pending_only=True))
    progress = Progress(f"reconcile {connector}", len(pending))
    queue: asyncio.Queue[_Pair] = asyncio.Queue()
    for pair in pending:
        queue.put_nowait(pair)

    async def worker() -> None:
        while not queue.empty():
            pair = queue.get_nowait()
            await _apply_pair(engine, applier, connector, pair, report)
            progress.advance()

    try:
        await asyncio.gather(*(worker() for _ in range(WORKERS)))
    finally:
        progress.close()


async def _apply_pair(
    engine: Engine, applier: Applier, connector: str, pair: _Pair, report: Report
) -> None:
    link_id = pair.link_id
    if link_id is None:
        with session_scope(engine) as session:
            link = session.exec(
                select(Link).where(
                    Link.connector == connector, Link.wix_account_id == pair.wix.account_id
                )
            ).one()
            link_id = link.id
    assert link_id is not None
    _mark(engine, connector, pair, started=True)
    wix = ext = None
    if pair.trusted:
        wix = Account(
            id=pair.wix.account_id,
            contact_id=pair.wix.contact_id,
            balance=pair.wix.balance,
            revision=int(pair.wix.revision or 0),
        )
        ext = ExternalAccount(id=pair.ext.account_id, balance=pair.ext.balance)
    try:
        result = await applier.sync(link_id, wix_account=wix, ext_account=ext)
    except SyncdError as error:
        report.errors.append(f"link {link_id}: {error}")
        return
    report.wix_adjusted += bool(result.wix_writes)
    report.wix_points += result.wix_points
    report.ext_adjusted += bool(result.ext_writes)
    report.ext_points += result.ext_points
    report.unchanged += not result.changed
    report.conflicts_opened += result.conflicts
    report.errors += result.errors
    _mark(engine, connector, pair, done=True)


def _mark(engine: Engine, connector: str, pair: _Pair, **flags: bool) -> None:
    with session_scope(engine) as session:
        row = session.get(ReconcilePair, (connector, pair.wix.account_id))
        if row is not None:
            for name, value in flags.items():
                setattr(row, name, value)


def _open_conflicts(engine: Engine, connector: str) -> int:
    with session_scope(engine) as session:
        count = session.exec(
            select(func.count())
            .select_from(Conflict)
            .join(Link, col(Link.id) == Conflict.link_id)
            .where(Link.connector == connector, Conflict.status == ConflictStatus.OPEN)
        ).one()
    return int(count)
