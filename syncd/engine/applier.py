"""The applier: read both sides, decide, and carry the plan out through the outbox.

For one link at a time (the caller holds the link's lease or is the only worker):

1. settle every earlier write of the link whose outcome is unknown (read back; DESIGN §2.6);
2. read W and E fresh, both at once (or take the caller's just-paged values) and `decide`;
3. for each write: commit the operation (as SENT: `Outbox.begin_send`), send it tagged with
   its id, then mark it APPLIED and move the bases in one transaction;
4. a 409 from Wix (the account changed under us) voids the write and re-plans from fresh
   reads; an unknown outcome is read back, never resent blind.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from connectors.base import Connector, ExternalAccount, ReadBack
from syncd.engine.outbox import Outbox, Planned, operation_id, tag
from syncd.engine.rules import (
    Absorb,
    AdjustExternal,
    AdjustWix,
    Bases,
    OpenConflict,
    Plan,
    Policy,
    SetBases,
    decide,
)
from syncd.errors import ConflictError, OutcomeUnknownError, SkipError
from syncd.logs import event, get_logger
from syncd.store.models import Direction, Link, Operation, OperationStatus
from syncd.wix.client import WixClient
from syncd.wix.models import Account

log = get_logger(__name__)
READ_BACK_SKEW = timedelta(minutes=5)  # clocks differ: look a little before the operation
MAX_REPLANS = 4


@dataclass
class SyncResult:
    """What one sync of one link did."""

    link_id: int
    wix_points: int = 0
    ext_points: int = 0
    wix_writes: int = 0
    ext_writes: int = 0
    conflicts: int = 0
    replans: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.wix_writes or self.ext_writes)


class _Replan(Exception):
    """The world moved under the plan: read again and decide again."""


class Applier:
    """Carries plans out for the links of one connector."""

    def __init__(
        self, outbox: Outbox, wix: WixClient, connector: Connector, policy: Policy
    ) -> None:
        self.outbox = outbox
        self.wix = wix
        self.connector = connector
        self.policy = policy

    async def recover(self) -> int:
        """Settle every PENDING/SENT operation of this connector; returns how many."""
        operations = self.outbox.unresolved(connector=self.connector.name)
        for operation in operations:
            await self.resolve(operation, self.outbox.link(operation.link_id))
        return len(operations)

    async def resolve(self, operation: Operation, link: Link) -> bool:
        """Read back whether `operation` was applied and record it; True if it was."""
        since = operation.created_at - READ_BACK_SKEW
        if operation.direction is Direction.TO_WIX:
            found = await self.wix.find_tagged_transaction(
                link.wix_account_id, tag(operation.id), since=since
            )
            applied, remote_id = found is not None, (found.id if found else None)
        else:
            back = await self.connector.read_back(link.external_id, key=operation.id, since=since)
            applied, remote_id = back.outcome is ReadBack.APPLIED, back.remote_id
        if applied:
            self.outbox.mark_applied(operation.id, remote_id)
        else:
            self.outbox.mark_void(operation.id, "read back: not applied")
        event(log, "operation.resolved", operation=operation.id, link=link.id, applied=applied)
        return applied

    async def sync(
        self,
        link_id: int,
        *,
        wix_account: Account | None = None,
        ext_account: ExternalAccount | None = None,
    ) -> SyncResult:
        """Bring one link in step. `wix_account`/`ext_account`: values just read, if any."""
        result = SyncResult(link_id)
        for _ in range(MAX_REPLANS):
            link, unresolved = self.outbox.snapshot(link_id)
            for operation in unresolved:
                await self.resolve(operation, link)
                link = self.outbox.link(link_id)
                wix_account = ext_account = None  # bases moved: read fresh
            wix, ext = await self._read(link, wix_account, ext_account)
            wix_account = ext_account = None  # a re-plan always reads fresh
            bases = Bases(link.wix_base, link.ext_base)
            plan = decide(bases, wix.balance, ext.balance, self.policy)
            planned = Planned(wix.balance, ext.balance, bases, wix.revision)
            try:
                await self._carry_out(link, plan, planned, wix, result)
                return result
            except _Replan:
                result.replans += 1
        result.errors.append(f"link {link_id}: kept changing during {MAX_REPLANS} attempts")
        return result

    async def _read(
        self, link: Link, wix: Account | None, ext: ExternalAccount | None
    ) -> tuple[Account, ExternalAccount]:
        """Both balances: the ones given, the others read, both at once when both are
        needed (two independent reads: neither depends on the other's answer)."""
        if wix is None and ext is None:
            return await asyncio.gather(
                self.wix.get_account(link.wix_account_id),
                self.connector.get_account(link.external_id),
            )
        return (
            wix or await self.wix.get_account(link.wix_account_id),
            ext or await self.connector.get_account(link.external_id),
        )

    async def _carry_out(
        self, link: Link, plan: Plan, planned: Planned, wix: Account, result: SyncResult
    ) -> None:
        assert link.id is not None
        for action in plan.actions:
            match action:
                case SetBases(wix=wix_base, ext=ext_base):
                    self.outbox.set_bases(link.id, wix_base, ext_base)
                case Absorb():
                    self.outbox.absorb(
                        link.id,
                        action.side,
                        action.amount,
                        action.conflict,
                        action.detail,
                        wix=planned.wix,
                        ext=planned.ext,
                    )
                    result.conflicts += action.conflict is not None
                case OpenConflict():
                    self.outbox.open_conflict(
                        link.id, action.kind, action.detail, wix=planned.wix, ext=planned.ext
                    )
                    result.conflicts += 1
                case AdjustWix() | AdjustExternal():
                    if not await self._write(link, action, planned, wix, result):
                        return

    async def _write(
        self,
        link: Link,
        action: AdjustWix | AdjustExternal,
        planned: Planned,
        wix: Account,
        result: SyncResult,
    ) -> bool:
        """Send one write through the outbox; False when the rest of the plan must wait."""
        direction = Direction.TO_WIX if isinstance(action, AdjustWix) else Direction.TO_EXTERNAL
        op_id = operation_id(link.id or 0, planned, direction, action.delta)
        operation = self.outbox.begin_send(
            link, op_id, direction, action.delta, action.carried, planned
        )
        if operation.status is OperationStatus.FAILED:
            result.errors.append(f"link {link.id}: write refused before: {operation.error}")
            return False
        if operation.status is OperationStatus.APPLIED:
            return True
        try:
            remote_id = await self._send(link, direction, action.delta, op_id, wix)
        except ConflictError:
            self.outbox.mark_void(op_id, "stale: the account changed since it was read")
            raise _Replan from None
        except OutcomeUnknownError:
            if not await self.resolve(operation, link):
                raise _Replan from None
        except SkipError as error:
            self.outbox.mark_failed(op_id, str(error))
            result.errors.append(f"link {link.id}: {error}")
            return False
        else:
            self.outbox.mark_applied(op_id, remote_id)
        if direction is Direction.TO_WIX:
            result.wix_writes += 1
            result.wix_points += action.delta
        else:
            result.ext_writes += 1
            result.ext_points += action.delta
        event(
            log,
            "write.applied",
            level=logging.DEBUG,
            link=link.id,
            operation=op_id,
            direction=direction.value,
            delta=action.delta,
        )
        return True

    async def _send(
        self, link: Link, direction: Direction, delta: int, op_id: str, wix: Account
    ) -> str | None:
        if direction is Direction.TO_WIX:
            change = await self.wix.adjust_points(
                link.wix_account_id,
                amount=delta,
                revision=wix.revision,
                description=f"{tag(op_id)} from {self.connector.name}",
            )
            return change.transaction_id
        written = await self.connector.apply_delta(
            link.external_id, delta, key=op_id, reason=f"{tag(op_id)} from wix"
        )
        return written.remote_id
