"""Dirty links and their leases: the queue between change detection and the workers.

Marking is idempotent and coalesces: many events for one account leave one dirty link. A
worker *claims* dirty links by taking a lease (owner + expiry) in one statement — safe with
several workers and several replicas (on PostgreSQL the candidates are locked with SKIP
LOCKED; SQLite serialises writers) — and *releases* a link when done: it stays dirty if an
event arrived after the claim, so a change during a sync is never lost. A worker that dies
leaves a lease that simply expires.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    case,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.dml import ReturningUpdate
from sqlalchemy.sql.elements import BindParameter
from sqlmodel import Session, col

from syncd.store.db import session_scope
from syncd.store.models import Conflict, InboxEvent, Link

MERGED_AWAY = "merged_away"


def mark_dirty(
    engine: Engine,
    *,
    now: datetime,
    wix_account_id: str | None = None,
    connector: str | None = None,
    external_id: str | None = None,
) -> int:
    """Mark the links of a Wix account (any connector), or of one external account, dirty.
    Returns how many links that names (0: the account is not linked yet)."""
    where = _links_of(wix_account_id, connector, external_id)
    with session_scope(engine) as session:
        result = session.execute(update(Link).where(where).values(dirty=True, dirty_since=now))
        return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ChangeEvent:
    """A change a source reported (a webhook, a polled entry), kept once per (source, id).

    It names a Wix account, or one connector's account (`connector` + `external_id`, with the
    accounts that connector merged into it, `merged_ids`), or no account at all.

    Echo suppression: `balance` is the balance the event reports on its own side, when it
    carries one (a hint). A link whose base on that side equals it, and that no sync holds,
    has carried that state already: the event leaves it as it is. `own_write`: the event
    describes syncd's own tagged write; it marks nothing (the write moved the bases)."""

    source: str
    event_id: str
    event_type: str
    wix_account_id: str | None = None
    connector: str | None = None
    external_id: str | None = None
    merged_ids: tuple[str, ...] = ()
    balance: int | None = None
    own_write: bool = False

    @property
    def account(self) -> str | None:
        return self.wix_account_id if self.wix_account_id is not None else self.external_id


def record_change(
    engine: Engine,
    *,
    source: str,
    event_id: str,
    event_type: str,
    now: datetime,
    wix_account_id: str | None = None,
    connector: str | None = None,
    external_id: str | None = None,
    merged_ids: Sequence[str] = (),
    balance: int | None = None,
    own_write: bool = False,
) -> str:
    """Store a change event once and mark its link dirty, in ONE transaction (so a crash
    between the two cannot leave an event stored whose link was never marked). `merged_ids`:
    external accounts the remote merged into `external_id`, whose links follow it (`repoint`);
    `balance` and `own_write`: see `ChangeEvent`.

    Returns "duplicate" (seen before: nothing done), "linked" (its link is dirty now), "echo"
    (it names linked accounts but describes a state they carried: none marked by it) or
    "unlinked" (kept unprocessed in the inbox, for the matcher of new accounts)."""
    change = ChangeEvent(
        source,
        event_id,
        event_type,
        wix_account_id,
        connector,
        external_id,
        tuple(merged_ids),
        balance,
        own_write,
    )
    return record_changes(engine, [change], now=now)[0]


def record_changes(engine: Engine, changes: Sequence[ChangeEvent], *, now: datetime) -> list[str]:
    """`record_change` for many events in ONE transaction (intake's group commit): each
    event's outcome, in order. A repeat of an event inside the batch is a duplicate too; merges
    repoint links in the batch's order. If anything fails, nothing of the batch is kept and
    the error is raised: no event is stored without its link marked, none marked unstored.

    A few prepared statements per batch, not per event: statement building is most of what
    SQLAlchemy costs, so they are built once (`_INBOX_SQL`, `_LINK_SQL`)."""
    if not changes:
        return []
    with engine.begin() as connection:
        fresh = _keep_once(connection, changes, now)
        linked = _mark_links(connection, [(i, changes[i]) for i in sorted(fresh)], now)
        _mark_processed(connection, [changes[i] for i in linked], now)
    return [
        ("linked" if linked[i] else "echo")
        if i in linked
        else "unlinked"
        if i in fresh
        else "duplicate"
        for i in range(len(changes))
    ]


def _keep_once(connection: Connection, changes: Sequence[ChangeEvent], now: datetime) -> set[int]:
    """Insert every event not in the inbox yet (one statement); the indexes inserted now."""
    first: dict[tuple[str, str], int] = {}
    for index, change in enumerate(changes):
        first.setdefault((change.source, change.event_id), index)
    rows = [
        {
            "source": changes[index].source,
            "event_id": changes[index].event_id,
            "event_type": changes[index].event_type,
            "entity_id": changes[index].account,
            "received_at": now,
        }
        for index in first.values()
    ]
    kept = connection.execute(_INBOX_SQL.keep[connection.dialect.name], rows)
    return {first[(source, event_id)] for source, event_id in kept}


def _mark_links(
    connection: Connection, fresh: list[tuple[int, ChangeEvent]], now: datetime
) -> dict[int, bool]:
    """Mark dirty the links the fresh events name; for the index of each event that named
    one, whether it marked one (False: an echo). Events are marked in runs (a few statements
    each); a merge is its own run, in order."""
    linked: dict[int, bool] = {}
    run: list[tuple[int, ChangeEvent]] = []
    for index, change in fresh:
        if change.account is None:
            continue
        if not change.merged_ids:
            run.append((index, change))
            continue
        linked |= _mark_run(connection, run, now)
        run = []
        if change.connector is not None and change.external_id is not None:
            with Session(connection) as session:  # joins the batch's transaction
                repoint(session, change.connector, change.external_id, change.merged_ids)
                session.flush()
        linked |= _mark_run(connection, [(index, change)], now)
    return linked | _mark_run(connection, run, now)


def _mark_run(
    connection: Connection, run: list[tuple[int, ChangeEvent]], now: datetime
) -> dict[int, bool]:
    """One UPDATE for the Wix accounts named, one per connector for external accounts; for
    each event that named a link, whether it marked one (see `_spared` for which it spares)."""
    if not run:
        return {}
    wix: dict[str, list[ChangeEvent]] = {}
    external: dict[str, dict[str, list[ChangeEvent]]] = {}
    for _, change in run:
        if change.wix_account_id is not None:
            wix.setdefault(change.wix_account_id, []).append(change)
        elif change.connector is not None and change.external_id is not None:
            accounts = external.setdefault(change.connector, {})
            accounts.setdefault(change.external_id, []).append(change)
        else:
            raise ValueError("name a Wix account, or a connector and an external account")
    marked: dict[tuple[str | None, str], bool] = {}
    if wix:
        found = connection.execute(_LINK_SQL.mark_wix, _mark_params(wix, now))
        for account, now_dirty in found:
            marked[(None, account)] = marked.get((None, account), False) or bool(now_dirty)
    for connector, accounts in external.items():
        params = _mark_params(accounts, now) | {"in_connector": connector}
        found = connection.execute(_LINK_SQL.mark_external, params)
        for account, now_dirty in found:
            marked[(connector, account)] = bool(now_dirty)
    outcomes: dict[int, bool] = {}
    for index, change in run:
        key = (
            (None, change.wix_account_id)
            if change.wix_account_id is not None
            else (change.connector, change.external_id)
        )
        if key in marked:
            outcomes[index] = marked[key]
    return outcomes


def _mark_params(accounts: dict[str, list[ChangeEvent]], now: datetime) -> dict[str, object]:
    """The parameters of one marking UPDATE: every account named (`ids`), those only syncd's
    own writes named (`quiet`), and (account, balance) for those whose every event reports
    the same balance (`echoes`). An account with an event without a balance, or with two
    balances in the batch, is marked as before: one of them is a change."""
    quiet: list[str] = []
    echoes: list[tuple[str, int]] = []
    for account, changes in accounts.items():
        balances = {change.balance for change in changes if not change.own_write}
        if not balances:
            quiet.append(account)
        elif len(balances) == 1 and (balance := balances.pop()) is not None:
            echoes.append((account, balance))
    return {"now": now, "ids": sorted(accounts), "quiet": quiet, "echoes": echoes}


def _mark_processed(connection: Connection, changes: list[ChangeEvent], now: datetime) -> None:
    """The events whose link is marked need no matcher: processed now."""
    by_source: dict[str, list[str]] = {}
    for change in changes:
        by_source.setdefault(change.source, []).append(change.event_id)
    for source, event_ids in by_source.items():
        connection.execute(
            _INBOX_SQL.processed, {"now": now, "from_source": source, "ids": event_ids}
        )


class _InboxSql:
    """The inbox statements of `record_changes`, built once."""

    def __init__(self) -> None:
        table = InboxEvent.__table__  # type: ignore[attr-defined]
        self.keep = {
            name: insert(table)
            .on_conflict_do_nothing(index_elements=["source", "event_id"])
            .returning(table.c.source, table.c.event_id)
            for name, insert in (("sqlite", sqlite.insert), ("postgresql", postgresql.insert))
        }
        self.processed = (
            update(table)
            .where(
                table.c.source == bindparam("from_source"),
                table.c.event_id.in_(bindparam("ids", expanding=True)),
            )
            .values(processed_at=bindparam("now", type_=table.c.processed_at.type))
        )


class _LinkSql:
    """The dirty marks of `record_changes`, built once.

    Each is ONE statement, so the check and the mark are atomic against a worker's claim and
    against the bases moving (on PostgreSQL an UPDATE re-evaluates a row changed under it):
    every link named is updated, and the spared ones keep their `dirty` and `dirty_since`.
    Each returns the account and whether it was marked now (its `dirty_since` is `now`:
    SQLite cannot re-evaluate the row-value IN in RETURNING). A link spared that an earlier
    event of the same batch marked reads as marked: its event is then "linked", not "echo",
    which only wakes the workers once more."""

    def __init__(self) -> None:
        table = Link.__table__  # type: ignore[attr-defined]
        self.mark_wix = self._mark(table, table.c.wix_account_id, table.c.wix_base)
        self.mark_external = self._mark(
            table,
            table.c.external_id,
            table.c.ext_base,
            table.c.connector == bindparam("in_connector"),
        )

    @staticmethod
    def _mark(
        table: Table,
        account: ColumnElement[str],
        base: ColumnElement[int],
        *where: ColumnElement[bool],
    ) -> ReturningUpdate[str, bool]:
        now = bindparam("now", type_=table.c.dirty_since.type)
        spared = _spared(table, account, base, now)
        return (
            update(table)
            .where(account.in_(bindparam("ids", expanding=True)), *where)
            .values(
                dirty=case((spared, table.c.dirty), else_=true()),
                dirty_since=case((spared, table.c.dirty_since), else_=now),
            )
            .returning(account, table.c.dirty_since == now)
        )


def _spared(
    table: Table,
    account: ColumnElement[str],
    base: ColumnElement[int],
    now: BindParameter[datetime],
) -> ColumnElement[bool]:
    """A link the event leaves alone: only syncd's own writes named its account (`quiet`),
    or no sync holds it (no owner, or its lease ran out) and its base on the event's side
    equals the balance the event reports (`echoes`): that state is carried already. A NULL
    base (never synced) makes this NULL, which marks."""
    unleased = or_(table.c.lease_owner.is_(None), table.c.lease_until < now)
    echo = tuple_(account, base).in_(bindparam("echoes", expanding=True))
    return or_(account.in_(bindparam("quiet", expanding=True)), and_(unleased, echo))


_INBOX_SQL = _InboxSql()
_LINK_SQL = _LinkSql()


def repoint(session: Session, connector: str, primary: str, merged_ids: Sequence[str]) -> None:
    """The remote merged `merged_ids` into `primary` (a CRM merging duplicate contacts).

    A merged account's link now names `primary` and keeps its bases: whatever balance the
    remote kept on the merged record is the latest state of that customer there, and its
    difference from the base reaches Wix like any change made at the source. When `primary`
    is linked already (two Wix accounts were mirrored by the two records), the merged-away
    link cannot follow: it is left clean with an open `merged_away` conflict naming both,
    for an operator — its Wix account keeps its points."""
    for merged in merged_ids:
        if merged == primary:
            continue
        link = session.scalars(
            select(Link).where(col(Link.connector) == connector, col(Link.external_id) == merged)
        ).first()
        if link is None:
            continue
        taken = session.scalars(
            select(col(Link.id)).where(
                col(Link.connector) == connector, col(Link.external_id) == primary
            )
        ).first()
        if taken is None:
            link.external_id = primary
            session.add(link)
            session.flush()
            continue
        link.dirty, link.dirty_since = False, None
        session.add(link)
        session.add(
            Conflict(
                link_id=link.id,
                kind=MERGED_AWAY,
                detail=(
                    f"{connector} merged account {merged} into {primary}, which is linked to "
                    f"another Wix account (link {taken}); this Wix account is no longer mirrored"
                ),
            )
        )


def _links_of(
    wix_account_id: str | None, connector: str | None, external_id: str | None
) -> ColumnElement[bool]:
    if wix_account_id is not None:
        return col(Link.wix_account_id) == wix_account_id
    if connector is not None and external_id is not None:
        return and_(col(Link.connector) == connector, col(Link.external_id) == external_id)
    raise ValueError("name a Wix account, or a connector and an external account")


def mark_link_dirty(engine: Engine, link_id: int, *, now: datetime) -> None:
    """One link, by id (the drift check found its balances apart)."""
    with session_scope(engine) as session:
        session.execute(
            update(Link).where(col(Link.id) == link_id).values(dirty=True, dirty_since=now)
        )


# claim, release and renew run for every sync: plain SQLAlchemy Core on one connection per
# call (no ORM session), one transaction each, with statements built once here (building one
# costs more than running it).
_LINKS: Table = Link.__table__  # type: ignore[attr-defined]  # SQLModel sets it on table models
_L = _LINKS.c


def _candidates(*, by_connector: bool) -> Select[int, str]:
    """Dirty links nobody holds, oldest change first, up to `:limit` (`:now`, `:connector`)."""
    statement = (
        select(_L.id, _L.connector)
        .where(_L.dirty.is_(True))
        .where(
            or_(
                _L.lease_until.is_(None),
                _L.lease_until < bindparam("now", type_=_L.lease_until.type),
            )
        )
        .where(_L.external_id.not_like("pending:%"))  # its account is being created
        .order_by(_L.dirty_since)
        .limit(bindparam("limit", type_=Integer()))
        .with_for_update(skip_locked=True)
    )
    if by_connector:
        statement = statement.where(_L.connector == bindparam("connector"))
    return statement


_CANDIDATES = _candidates(by_connector=False)
_CANDIDATES_OF_CONNECTOR = _candidates(by_connector=True)
_LEASE = (
    update(_LINKS)
    .where(_L.id.in_(bindparam("ids", expanding=True)))
    .values(
        lease_owner=bindparam("owner"), lease_until=bindparam("until", type_=_L.lease_until.type)
    )
)
_RENEW = (
    update(_LINKS)
    .where(_L.id.in_(bindparam("ids", expanding=True)), _L.lease_owner == bindparam("owner"))
    .values(lease_until=bindparam("until", type_=_L.lease_until.type))
)
_GIVE_BACK = (
    update(_LINKS)
    .where(_L.id == bindparam("link_id"), _L.lease_owner == bindparam("owner"))
    .values(lease_owner=None, lease_until=bindparam("until", type_=_L.lease_until.type))
)
_CLEAN = (
    update(_LINKS)
    .where(_L.id == bindparam("link_id"))
    .where(
        or_(
            _L.dirty_since.is_(None),
            _L.dirty_since <= bindparam("claimed_at", type_=_L.dirty_since.type),
        )
    )
    .values(dirty=False, dirty_since=None)
)


def claim(
    engine: Engine,
    owner: str,
    *,
    now: datetime,
    limit: int,
    lease: timedelta,
    connector: str | None = None,
) -> list[int]:
    """Lease up to `limit` dirty links nobody holds (oldest change first); their ids."""
    claimed = claim_links(engine, owner, now=now, limit=limit, lease=lease, connector=connector)
    return [link_id for link_id, _connector in claimed]


def claim_links(
    engine: Engine,
    owner: str,
    *,
    now: datetime,
    limit: int,
    lease: timedelta,
    connector: str | None = None,
) -> list[tuple[int, str]]:
    """`claim`, giving each leased link's connector with its id (the worker needs both)."""
    with engine.begin() as connection:
        if connector is None:
            found = connection.execute(_CANDIDATES, {"now": now, "limit": limit})
        else:
            found = connection.execute(
                _CANDIDATES_OF_CONNECTOR, {"now": now, "limit": limit, "connector": connector}
            )
        claimed = [(int(i), str(c)) for i, c in found]
        if claimed:
            connection.execute(
                _LEASE,
                {"ids": [i for i, _c in claimed], "owner": owner, "until": now + lease},
            )
        return claimed


def release(
    engine: Engine,
    link_id: int,
    owner: str,
    *,
    claimed_at: datetime,
    synced: bool,
    retry_at: datetime | None = None,
) -> None:
    """Give the lease back; a synced link is clean unless marked again after `claimed_at`.
    A link that failed is not claimed again before `retry_at` (no tight retry loop)."""
    with engine.begin() as connection:
        until = None if synced else retry_at
        connection.execute(_GIVE_BACK, {"link_id": link_id, "owner": owner, "until": until})
        if synced:
            connection.execute(_CLEAN, {"link_id": link_id, "claimed_at": claimed_at})


def renew(
    engine: Engine, owner: str, link_ids: list[int], *, now: datetime, lease: timedelta
) -> None:
    """Extend the leases this worker still holds (a long sync keeps its link)."""
    if not link_ids:
        return
    with engine.begin() as connection:
        connection.execute(_RENEW, {"ids": link_ids, "owner": owner, "until": now + lease})


def release_dead(engine: Engine, host: str, is_alive: Callable[[int], bool]) -> int:
    """Free leases left by processes of this host that no longer run (a crash, a restart);
    other hosts' leases expire on their own. Owners are `host:pid`."""
    with session_scope(engine) as session:
        owners = session.execute(
            select(col(Link.lease_owner)).where(col(Link.lease_owner).is_not(None)).distinct()
        ).scalars()
        mine = [o for o in owners if o and o.rsplit(":", 1)[0] == host]  # compared literally
        dead = [o for o in mine if not _alive(o, is_alive)]
        if not dead:
            return 0
        result = session.execute(
            update(Link)
            .where(col(Link.lease_owner).in_(dead))
            .values(lease_owner=None, lease_until=None)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def _alive(owner: str, is_alive: Callable[[int], bool]) -> bool:
    pid = owner.rsplit(":", 1)[-1]
    return pid.isdigit() and is_alive(int(pid))


def backlog(engine: Engine) -> tuple[int, datetime | None]:
    """How many links are dirty, and since when the oldest one has waited."""
    from sqlalchemy import func

    with session_scope(engine) as session:
        count, oldest = session.execute(
            select(func.count(), func.min(Link.dirty_since)).where(col(Link.dirty).is_(True))
        ).one()
        return int(count), oldest
