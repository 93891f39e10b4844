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
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
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
) -> str:
    """Store a change event once and mark its link dirty, in ONE transaction (so a crash
    between the two cannot leave an event stored whose link was never marked). `merged_ids`:
    external accounts the remote merged into `external_id`, whose links follow it (`repoint`).

    Returns "duplicate" (seen before: nothing done), "linked" (its link is dirty now) or
    "unlinked" (kept unprocessed in the inbox, for the matcher of new accounts)."""
    account = wix_account_id if wix_account_id is not None else external_id
    try:
        with session_scope(engine) as session:
            session.add(
                InboxEvent(
                    source=source,
                    event_id=event_id,
                    event_type=event_type,
                    entity_id=account,
                    received_at=now,
                )
            )
            session.flush()
            if account is None:
                return "unlinked"
            if merged_ids and connector is not None and external_id is not None:
                repoint(session, connector, external_id, merged_ids)
            result = session.execute(
                update(Link)
                .where(_links_of(wix_account_id, connector, external_id))
                .values(dirty=True, dirty_since=now)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return "unlinked"
            session.execute(
                update(InboxEvent)
                .where(col(InboxEvent.source) == source, col(InboxEvent.event_id) == event_id)
                .values(processed_at=now)
            )
            return "linked"
    except IntegrityError:
        return "duplicate"


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
    candidates = (
        select(col(Link.id))
        .where(col(Link.dirty).is_(True))
        .where(or_(col(Link.lease_until).is_(None), col(Link.lease_until) < now))
        .where(col(Link.external_id).not_like("pending:%"))  # its account is being created
        .order_by(col(Link.dirty_since))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if connector is not None:
        candidates = candidates.where(col(Link.connector) == connector)
    with session_scope(engine) as session:
        ids = [int(i) for i in session.execute(candidates).scalars()]
        if ids:
            session.execute(
                update(Link)
                .where(col(Link.id).in_(ids))
                .values(lease_owner=owner, lease_until=now + lease)
            )
        return ids


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
    values: dict[str, object] = {"lease_owner": None, "lease_until": None if synced else retry_at}
    with session_scope(engine) as session:
        session.execute(
            update(Link)
            .where(col(Link.id) == link_id, col(Link.lease_owner) == owner)
            .values(values)
        )
        if synced:
            session.execute(
                update(Link)
                .where(col(Link.id) == link_id)
                .where(or_(col(Link.dirty_since).is_(None), col(Link.dirty_since) <= claimed_at))
                .values(dirty=False, dirty_since=None)
            )


def renew(
    engine: Engine, owner: str, link_ids: list[int], *, now: datetime, lease: timedelta
) -> None:
    """Extend the leases this worker still holds (a long sync keeps its link)."""
    if not link_ids:
        return
    with session_scope(engine) as session:
        session.execute(
            update(Link)
            .where(col(Link.id).in_(link_ids), col(Link.lease_owner) == owner)
            .values(lease_until=now + lease)
        )


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
