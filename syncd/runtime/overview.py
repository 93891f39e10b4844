"""What the store says about the deployment: links, backlog, outbox, conflicts, cursors.

Read by `GET /status` and by `syncd status` / `syncd conflicts list` (which need no running
daemon: they read the database). Ids and counts only, no personal data.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from syncd.runtime.dirty import backlog
from syncd.store.db import session_scope
from syncd.store.models import (
    Conflict,
    ConflictStatus,
    Cursor,
    Link,
    Operation,
    OperationStatus,
)


def overview(engine: Engine) -> dict[str, Any]:
    dirty, oldest = backlog(engine)
    with session_scope(engine) as session:
        links = dict(
            session.exec(select(Link.connector, func.count()).group_by(Link.connector)).all()
        )
        conflicts = dict(
            session.exec(
                select(Link.connector, func.count())
                .select_from(Conflict)
                .join(Link, col(Link.id) == Conflict.link_id)
                .where(Conflict.status == ConflictStatus.OPEN)
                .group_by(Link.connector)
            ).all()
        )
        operations = {
            str(status): int(count)
            for status, count in session.exec(
                select(Operation.status, func.count()).group_by(Operation.status)
            ).all()
        }
        cursors = {c.name: c.updated_at.isoformat() for c in session.exec(select(Cursor)).all()}
    return {
        "links": {str(k): int(v) for k, v in links.items()},
        "dirty_links": dirty,
        "oldest_unsynced": oldest.isoformat() if oldest else None,
        "conflicts_open": {str(k): int(v) for k, v in conflicts.items()},
        "operations": operations,
        "unresolved_operations": sum(
            operations.get(s.value, 0) for s in (OperationStatus.PENDING, OperationStatus.SENT)
        ),
        "cursors_updated": cursors,
    }


def open_conflicts(engine: Engine, limit: int = 200) -> list[dict[str, Any]]:
    """The open conflicts, oldest first, with their link's connector and account ids."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(Conflict, Link)
            .join(Link, col(Link.id) == Conflict.link_id, isouter=True)
            .where(Conflict.status == ConflictStatus.OPEN)
            .order_by(col(Conflict.created_at))
            .limit(limit)
        ).all()
    return [
        {
            "id": conflict.id,
            "connector": link.connector if link else None,
            "link": conflict.link_id,
            "wix_account": link.wix_account_id if link else None,
            "external_account": link.external_id if link else None,
            "kind": conflict.kind,
            "side": conflict.side,
            "amount": conflict.amount,
            "detail": conflict.detail,
            "opened": conflict.created_at.isoformat(),
        }
        for conflict, link in rows
    ]
