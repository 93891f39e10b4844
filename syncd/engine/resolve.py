"""An operator resolves a conflict: both sides of its link are brought to the chosen balance.

The link is leased (so no worker syncs it meanwhile), both balances are read fresh, the link is
given the bases from which the ordinary rules write each side the difference
(`rules.rebase_for`), the conflict (and any other open one of the link) is closed, and the link
is synced at once through the outbox — tagged writes, read back if an answer is lost.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Literal

from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlmodel import col

from connectors.base import Connector
from syncd.clock import utcnow
from syncd.engine.applier import Applier, SyncResult
from syncd.engine.outbox import Outbox
from syncd.engine.rules import Policy, rebase_for
from syncd.errors import ConfigError, SyncdError
from syncd.store.db import session_scope
from syncd.store.models import Conflict, ConflictStatus, Link
from syncd.wix.client import WixClient

LEASE = timedelta(minutes=2)
Take = Literal["wix", "external", "value"]


@dataclass(frozen=True)
class Resolution:
    conflict_id: int
    link_id: int
    wix_before: int
    ext_before: int
    target: int
    result: SyncResult


def conflict_link(engine: Engine, conflict_id: int) -> Link:
    """The open conflict and its link; ConfigError (exit 2) when there is no such thing."""
    with session_scope(engine) as session:
        conflict = session.get(Conflict, conflict_id)
        if conflict is None:
            raise ConfigError(f"no conflict #{conflict_id}: see `syncd conflicts list`")
        if conflict.status is not ConflictStatus.OPEN:
            raise ConfigError(f"conflict #{conflict_id} is already {conflict.status.value}")
        link = session.get(Link, conflict.link_id) if conflict.link_id else None
        if link is None:
            raise ConfigError(
                f"conflict #{conflict_id} ({conflict.kind}) has no link to bring in step: "
                "link the accounts (run syncd --reconcile once the match is unique)"
            )
        return link


async def resolve(
    engine: Engine,
    wix: WixClient,
    connector: Connector,
    policy: Policy,
    conflict_id: int,
    take: Take,
    value: int = 0,
) -> Resolution:
    link = conflict_link(engine, conflict_id)
    assert link.id is not None
    owner = f"resolve:{socket.gethostname()}:{os.getpid()}"
    _lease(engine, link.id, owner)
    try:
        wix_account = await wix.get_account(link.wix_account_id)
        ext_account = await connector.get_account(link.external_id)
        bases = rebase_for(take, wix_account.balance, ext_account.balance, value)
        target = {"wix": wix_account.balance, "external": ext_account.balance}.get(take, value)
        now = utcnow()
        with session_scope(engine) as session:
            session.execute(
                update(Link)
                .where(col(Link.id) == link.id)
                .values(wix_base=bases.wix, ext_base=bases.ext, updated_at=now)
            )
            session.execute(
                update(Conflict)
                .where(
                    col(Conflict.link_id) == link.id, col(Conflict.status) == ConflictStatus.OPEN
                )
                .values(
                    status=ConflictStatus.RESOLVED,
                    resolved_at=now,
                    resolution=f"#{conflict_id}: took {take} ({target})",
                )
            )
        applier = Applier(Outbox(engine), wix, connector, replace(policy, conflict="merge"))
        result = await applier.sync(link.id, wix_account=wix_account, ext_account=ext_account)
    finally:
        _release(engine, link.id, owner)
    return Resolution(
        conflict_id, link.id, wix_account.balance, ext_account.balance, target, result
    )


def _lease(engine: Engine, link_id: int, owner: str) -> None:
    now = utcnow()
    with session_scope(engine) as session:
        taken = session.execute(
            update(Link)
            .where(col(Link.id) == link_id)
            .where(or_(col(Link.lease_owner).is_(None), col(Link.lease_until) < now))
            .values(lease_owner=owner, lease_until=now + LEASE)
        )
        if not taken.rowcount:  # type: ignore[attr-defined]
            raise SyncdError(f"link {link_id} is being synced right now: try again in a minute")


def _release(engine: Engine, link_id: int, owner: str) -> None:
    with session_scope(engine) as session:
        session.execute(
            update(Link)
            .where(col(Link.id) == link_id, col(Link.lease_owner) == owner)
            .values(lease_owner=None, lease_until=None)
        )
