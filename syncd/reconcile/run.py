"""`syncd --reconcile`: stage both sides, match, create what is missing, plan, apply, report.

Writes go through the same applier as the daemon, so a run killed at any line and run again
continues without repeating a write: unresolved operations are read back first, links keep
their bases, and a pair whose link moved since it was staged is read fresh before planning.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import bindparam, func, text
from sqlalchemy.engine import Engine
from sqlmodel import col, select

import connectors
from connectors.base import Connector, ExternalAccount
from syncd.budget import Priority, spending
from syncd.clock import utcnow
from syncd.engine.applier import Applier
from syncd.engine.outbox import Outbox, tag
from syncd.engine.rules import (
    Absorb,
    AdjustExternal,
    AdjustWix,
    OpenConflict,
    Plan,
    Policy,
    SetBases,
    decide,
)
from syncd.errors import ConflictError, PreconditionError, SkipError, SyncdError
from syncd.logs import event, get_logger
from syncd.names import split_name
from syncd.progress import Progress
from syncd.reconcile.bulk import (
    BatchWrite,
    PairRow,
    begin_writes,
    fail_write,
    finish_writes,
    mark_pairs,
    only_writes,
    pair_chunks,
    settle,
    void_write,
)
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
from syncd.store.models import (
    Conflict,
    ConflictStatus,
    Direction,
    Link,
    ReconcilePair,
    StagedAccount,
)
from syncd.store.types import UTCDateTime
from syncd.wix.client import WixClient
from syncd.wix.models import Account

log = get_logger(__name__)

CHUNK = 500  # pairs read, planned and settled together
PIPELINE = 2  # chunks in progress at once
CONCURRENCY = 16  # calls in flight (each still waits for the API's budget); more costs
# more CPU than it saves waiting: httpx keeps 20 connections alive, and its pool scans them all


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    plan_file: Path | None = None
    force: bool = False


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
    with session_scope(engine) as session:
        report.linked = pair_counts(session, connector.name)
    rows = functools.partial(_plan_rows, engine, connector.name, run_started, policy)
    # Only pairs linked before this run can trip the brake: none, no pass over the pairs.
    brake = report.linked.get("link") and _brake(rows(), settings.sync.max_changed_fraction)
    if brake and not options.force:
        report.stopped = brake + "; check the plan with --dry-run, then run again with --force"
    elif options.dry_run:
        summarised = _summarise(rows(), report)
        if options.plan_file:
            write_plan(options.plan_file, summarised)
        else:
            collections.deque(summarised, maxlen=0)
        _would_create(connector, matching, report)
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
            for chunk in pair_chunks(engine, connector.name, run_started, size=CHUNK)
            for pair in chunk
            if pair.link_id is not None
            and pair.matched_by == "link"
            and not decide(pair.bases, pair.wix_balance, pair.ext_balance, policy).empty
        ]
        finish_run(engine, connector.name, state)
    return drifted


async def _stage(engine: Engine, wix: WixClient, connector: Connector, state: RunState) -> None:
    """Both sides at once: each page is stored with its side's cursor in one transaction (no
    await between the two), so a run stopped anywhere resumes each side where it stood."""

    async def wix_side() -> None:
        await stage_wix(engine, wix, connector.name, state)
        if "phone" in connector.settings.match_on:
            await stage_contacts(engine, wix, connector.name, state)

    await asyncio.gather(wix_side(), stage_external(engine, connector, state))


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
    """A link, still without bases, for every pair that matching found by a key (one
    INSERT ... SELECT: the pairs never pass through Python, so 400,000 cost no memory)."""
    with session_scope(engine) as session:
        session.execute(
            text(
                "INSERT INTO links (connector, wix_account_id, wix_contact_id, external_id,"
                " dirty, created_at, updated_at)"
                " SELECT p.connector, p.wix_account_id, w.contact_id, p.external_id, false,"
                " :now, :now FROM reconcile_pairs p"
                " JOIN reconcile_accounts w ON w.side = 'wix' AND w.connector = p.connector"
                "  AND w.account_id = p.wix_account_id"
                " WHERE p.connector = :c AND p.matched_by NOT IN ('link', 'created')"
                # Two NOT EXISTS, not one with OR: each is one lookup in a unique index.
                " AND NOT EXISTS (SELECT 1 FROM links l WHERE l.connector = :c"
                "  AND l.wix_account_id = p.wix_account_id)"
                " AND NOT EXISTS (SELECT 1 FROM links l WHERE l.connector = :c"
                "  AND l.external_id = p.external_id)"
            ).bindparams(bindparam("now", type_=UTCDateTime())),
            {"c": connector, "now": utcnow()},
        )


def _plan_rows(
    engine: Engine, connector: str, run_started: datetime, policy: Policy
) -> Iterator[PlanRow]:
    """What the rules would do with every pair, as it is staged (streamed)."""
    for chunk in pair_chunks(engine, connector, run_started, size=CHUNK):
        yield from (_plan_row(pair, policy) for pair in chunk)


def _plan_row(pair: PairRow, policy: Policy) -> PlanRow:
    plan = decide(pair.bases, pair.wix_balance, pair.ext_balance, policy)
    kinds = sorted(
        {a.conflict.value for a in plan.actions if isinstance(a, Absorb) and a.conflict}
        | {a.kind.value for a in plan.actions if isinstance(a, OpenConflict)}
    )
    return PlanRow(
        wix_account_id=pair.wix_id,
        external_id=pair.ext_id,
        matched_by=pair.matched_by,
        wix_balance=pair.wix_balance,
        ext_balance=pair.ext_balance,
        to_wix=sum(a.delta for a in plan.actions if isinstance(a, AdjustWix)),
        to_external=sum(a.delta for a in plan.actions if isinstance(a, AdjustExternal)),
        held=sum(a.amount for a in plan.actions if isinstance(a, Absorb) and a.conflict),
        conflicts=" ".join(kinds),
    )


def _brake(rows: Iterable[PlanRow], fraction: float) -> str | None:
    """Refuse a run that would change too many accounts that were already in step."""
    linked = changing = 0
    for row in rows:
        if row.matched_by == "link":
            linked += 1
            changing += bool(row.to_wix or row.to_external)
    if linked and changing / linked > fraction:
        return (
            f"the plan changes {changing} of {linked} already-linked accounts, more "
            f"than sync.max_changed_fraction ({fraction:.0%})"
        )
    return None


def _summarise(rows: Iterable[PlanRow], report: Report) -> Iterator[PlanRow]:
    """Count each row into the dry run's report as it passes."""
    for row in rows:
        report.wix_adjusted += bool(row.to_wix)
        report.wix_points += row.to_wix
        report.ext_adjusted += bool(row.to_external)
        report.ext_points += row.to_external
        report.unchanged += not (row.to_wix or row.to_external)
        report.conflicts_opened += len(row.conflicts.split())
        yield row


async def _apply(
    engine: Engine, applier: Applier, connector: str, run_started: datetime, report: Report
) -> None:
    """Carry out every pair not done yet, a chunk at a time (see `syncd.reconcile.bulk`)."""
    with session_scope(engine) as session:
        pending = session.exec(
            select(func.count())
            .select_from(ReconcilePair)
            .where(ReconcilePair.connector == connector, col(ReconcilePair.done).is_(False))
        ).one()
    progress = Progress(f"reconcile {connector}", int(pending))
    calls = asyncio.Semaphore(CONCURRENCY)

    async def apply(chunk: list[PairRow]) -> None:
        await _apply_chunk(engine, applier, connector, chunk, calls, report)
        progress.advance(len(chunk))

    # Chunks overlap (PIPELINE at once, disjoint pairs): one's store work runs while the
    # other's calls wait for their answers.
    running: set[asyncio.Task[None]] = set()
    try:
        for chunk in pair_chunks(engine, connector, run_started, size=CHUNK, pending_only=True):
            if len(running) >= PIPELINE:
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # a failed chunk stops the run (it resumes from here)
            running.add(asyncio.create_task(apply(chunk)))
        await asyncio.gather(*running)
    finally:
        for task in running:
            task.cancel()
        progress.close()


async def _apply_chunk(
    engine: Engine,
    applier: Applier,
    connector: str,
    chunk: list[PairRow],
    calls: asyncio.Semaphore,
    report: Report,
) -> None:
    settled: list[tuple[PairRow, Plan]] = []
    writing: list[tuple[PairRow, Plan]] = []
    one_by_one: list[tuple[PairRow, bool]] = []  # (pair, whether its staged values hold)
    for pair in chunk:
        plan = decide(pair.bases, pair.wix_balance, pair.ext_balance, applier.policy)
        if not pair.trusted:
            one_by_one.append((pair, False))
        elif all(isinstance(a, SetBases) for a in plan.actions):
            settled.append((pair, plan))
        elif only_writes(plan):
            writing.append((pair, plan))
        else:
            one_by_one.append((pair, True))
    with engine.begin() as connection:
        moved = settle(connection, connector, settled)
        batches, left = begin_writes(connection, connector, writing)
    report.unchanged += len(settled) - len(moved)
    one_by_one += [(pair, False) for pair in (*moved, *left)]
    sent = await asyncio.gather(*(_send(applier, writes, calls) for writes in batches))
    with engine.begin() as connection:
        finish_writes(connection, [w for applied, _ in sent for w in applied])
        done: list[str] = []
        for writes, (applied, failure) in zip(batches, sent, strict=True):
            pair = writes[0].pair
            _count(report, [w for w, _ in applied])
            if failure is None or isinstance(failure, SkipError):
                if failure is not None:
                    fail_write(connection, writes[len(applied)].operation, str(failure))
                    report.errors.append(f"link {pair.link_id}: {failure}")
                done.append(pair.wix_id)
                continue
            if isinstance(failure, ConflictError):
                void_write(
                    connection,
                    writes[len(applied)].operation,
                    "stale: the account changed since it was read",
                )
            one_by_one.append((pair, False))  # read fresh; the applier settles what was SENT
        mark_pairs(connection, connector, done, done=True)

    async def one(pair: PairRow, trusted: bool) -> None:
        async with calls:
            await _apply_pair(engine, applier, connector, pair, trusted, report)

    await asyncio.gather(*(one(pair, trusted) for pair, trusted in one_by_one))


async def _send(
    applier: Applier, writes: list[BatchWrite], calls: asyncio.Semaphore
) -> tuple[list[tuple[BatchWrite, str | None]], SyncdError | None]:
    """Send one pair's writes in order; stop at the first that fails. Returns the applied
    ones with their remote ids, and the failure."""
    applied: list[tuple[BatchWrite, str | None]] = []
    async with calls:
        for write in writes:
            try:
                applied.append((write, await _send_one(applier, write)))
            except SyncdError as error:
                return applied, error
    return applied, None


async def _send_one(applier: Applier, write: BatchWrite) -> str | None:
    pair, marker = write.pair, tag(write.operation)
    if write.direction is Direction.TO_WIX:
        change = await applier.wix.adjust_points(
            pair.wix_id,
            amount=write.action.delta,
            revision=pair.wix_revision,
            description=f"{marker} from {applier.connector.name}",
        )
        return change.transaction_id
    written = await applier.connector.apply_delta(
        pair.ext_id, write.action.delta, key=write.operation, reason=f"{marker} from wix"
    )
    return written.remote_id


def _count(report: Report, applied: Iterable[BatchWrite]) -> None:
    for write in applied:
        if write.direction is Direction.TO_WIX:
            report.wix_adjusted += 1
            report.wix_points += write.action.delta
        else:
            report.ext_adjusted += 1
            report.ext_points += write.action.delta


async def _apply_pair(
    engine: Engine,
    applier: Applier,
    connector: str,
    pair: PairRow,
    trusted: bool,
    report: Report,
) -> None:
    """One pair through the applier, as the daemon syncs a link."""
    link_id = pair.link_id
    if link_id is None:
        with session_scope(engine) as session:
            link = session.exec(
                select(Link).where(Link.connector == connector, Link.wix_account_id == pair.wix_id)
            ).one()
            link_id = link.id
    assert link_id is not None
    with engine.begin() as connection:
        mark_pairs(connection, connector, [pair.wix_id], started=True)
    wix = ext = None
    if trusted:
        wix = Account(
            id=pair.wix_id,
            contact_id=pair.contact_id,
            balance=pair.wix_balance,
            revision=pair.wix_revision,
        )
        ext = ExternalAccount(id=pair.ext_id, balance=pair.ext_balance)
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
    with engine.begin() as connection:
        mark_pairs(connection, connector, [pair.wix_id], done=True)


def _open_conflicts(engine: Engine, connector: str) -> int:
    with session_scope(engine) as session:
        count = session.exec(
            select(func.count())
            .select_from(Conflict)
            .join(Link, col(Link.id) == Conflict.link_id)
            .where(Link.connector == connector, Conflict.status == ConflictStatus.OPEN)
        ).one()
    return int(count)
