"""The outbox's per-sync statements (plain Core, not the ORM): the intent is committed as SENT
before a write leaves, an unknown outcome is settled the same way as before, and the rows
they return behave like the ORM's detached objects."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from syncd.engine.outbox import Outbox, Planned, operation_id, tag
from syncd.engine.rules import Bases
from syncd.store.db import session_scope
from syncd.store.models import Direction, Link, Operation, OperationStatus
from tests.engine.conftest import World

pytestmark = pytest.mark.anyio


def stored(engine: Engine, op: str) -> Operation:
    """The operation as another connection sees it (only committed data)."""
    with Session(engine) as session:
        row = session.get(Operation, op)
        assert row is not None
        return row


def an_intent(world: World, email: str, phone: str, ext: int) -> tuple[Link, str, Planned]:
    """A linked customer with bases 0/0, Wix at 0 and the external side at `ext`, and the
    operation that would carry `ext` to Wix."""
    outbox = Outbox(world.engine)
    link_id = world.link(email, 0, ext, phone)
    outbox.set_bases(link_id, 0, 0)
    link = outbox.link(link_id)
    planned = Planned(0, ext, Bases(0, 0), 1)
    return link, operation_id(link_id, planned, Direction.TO_WIX, ext), planned


async def test_the_intent_is_committed_as_sent_before_the_call(world: World) -> None:
    """`begin_send` commits the operation, already SENT (one attempt), in one transaction."""
    link, op, planned = an_intent(world, "s1@x.com", "+14155550101", 20)
    returned = Outbox(world.engine).begin_send(link, op, Direction.TO_WIX, 20, 20, planned)
    row = stored(world.engine, op)
    assert (row.status, row.attempts, row.delta, row.link_id) == (
        OperationStatus.SENT,
        1,
        20,
        link.id,
    )
    assert row.sent_at is not None and row.created_at is not None
    assert (returned.id, returned.status, returned.created_at) == (op, row.status, row.created_at)


async def test_a_finished_operation_is_not_sent_again(world: World) -> None:
    """An APPLIED or FAILED row with the same id comes back as it is: nothing is resent."""
    outbox = Outbox(world.engine)
    link, op, planned = an_intent(world, "s2@x.com", "+14155550102", 30)
    outbox.begin_send(link, op, Direction.TO_WIX, 30, 30, planned)
    outbox.mark_applied(op, "tx-1")
    again = outbox.begin_send(link, op, Direction.TO_WIX, 30, 30, planned)
    assert again.status is OperationStatus.APPLIED and again.remote_tx_id == "tx-1"
    assert stored(world.engine, op).attempts == 1
    outbox.mark_failed(op, "refused")
    refused = outbox.begin_send(link, op, Direction.TO_WIX, 30, 30, planned)
    assert (refused.status, refused.error) == (OperationStatus.FAILED, "refused")


async def test_a_void_operation_is_sent_again_with_its_error_cleared(world: World) -> None:
    """A write proven absent (VOID) may be planned again: SENT, one more attempt."""
    outbox = Outbox(world.engine)
    link, op, planned = an_intent(world, "s3@x.com", "+14155550103", 40)
    outbox.begin_send(link, op, Direction.TO_WIX, 40, 40, planned)
    outbox.mark_void(op, "read back: not applied")
    again = outbox.begin_send(link, op, Direction.TO_WIX, 40, 40, planned)
    row = stored(world.engine, op)
    assert (row.status, row.attempts, row.error) == (OperationStatus.SENT, 2, None)
    assert (again.status, again.attempts, again.error) == (OperationStatus.SENT, 2, None)


async def test_mark_applied_moves_the_bases_once(world: World) -> None:
    """Marking the same write applied twice moves the bases by its delta once."""
    outbox = Outbox(world.engine)
    link, op, planned = an_intent(world, "s4@x.com", "+14155550104", 15)
    outbox.begin_send(link, op, Direction.TO_WIX, 15, 15, planned)
    outbox.mark_applied(op, "tx-2")
    outbox.mark_applied(op, "tx-2")
    assert link.id is not None
    after = outbox.link(link.id)
    assert (after.wix_base, after.ext_base) == (15, 15)
    row = stored(world.engine, op)
    assert (row.status, row.remote_tx_id) == (OperationStatus.APPLIED, "tx-2")
    assert row.applied_at is not None


async def test_a_crash_after_begin_send_is_settled_by_reading_back(world: World) -> None:
    """The process dies after the SENT intent: recovery reads back, as for PENDING. One that
    reached Wix becomes APPLIED (bases moved), one that never left becomes VOID and is
    planned again, and each point is written exactly once."""
    outbox = Outbox(world.engine)
    reached, _, reached_plan = an_intent(world, "s5@x.com", "+14155550105", 25)
    lost, _, lost_plan = an_intent(world, "s6@x.com", "+14155550106", 35)
    for link, planned in ((reached, reached_plan), (lost, lost_plan)):
        account = await world.wix.get_account(link.wix_account_id)
        planned = Planned(planned.wix, planned.ext, planned.bases, account.revision)
        fresh = operation_id(link.id or 0, planned, Direction.TO_WIX, planned.ext)
        outbox.begin_send(link, fresh, Direction.TO_WIX, planned.ext, planned.ext, planned)
        if link is reached:
            await world.wix.adjust_points(
                account.id,
                amount=planned.ext,
                revision=account.revision,
                description=f"{tag(fresh)} x",
            )
    assert await world.applier.recover() == 2
    with session_scope(world.engine) as session:
        rows = session.execute(select(Operation)).scalars()
        statuses = {op.link_id: op.status for op in rows}
    assert statuses == {reached.id: OperationStatus.APPLIED, lost.id: OperationStatus.VOID}
    for link in (reached, lost):
        assert link.id is not None
        await world.applier.sync(link.id)
    assert world.balances(reached.id or 0) == (25, 25)
    assert world.balances(lost.id or 0) == (35, 35)


async def test_snapshot_gives_the_link_and_its_unresolved_writes(world: World) -> None:
    """One read: the link, and its PENDING/SENT operations oldest first (not finished ones)."""
    outbox = Outbox(world.engine)
    link, first, planned = an_intent(world, "s7@x.com", "+14155550107", 10)
    outbox.begin_send(link, first, Direction.TO_WIX, 10, 10, planned)
    done = operation_id(link.id or 0, planned, Direction.TO_EXTERNAL, 3)
    outbox.begin_send(link, done, Direction.TO_EXTERNAL, 3, 3, planned)
    outbox.mark_applied(done, None)
    read, unresolved = outbox.snapshot(link.id or 0)
    assert read.id == link.id and (read.wix_base, read.ext_base) == (3, 3)
    assert [op.id for op in unresolved] == [first]
    assert unresolved[0].direction is Direction.TO_WIX and unresolved[0].delta == 10


async def test_rows_read_with_core_behave_like_detached_orm_objects(world: World) -> None:
    """A link the outbox returns can be changed in a session like one a session loaded: it
    is updated in place, not inserted again."""
    outbox = Outbox(world.engine)
    link_id = world.link("s8@x.com", 1, 2, "+14155550108")
    link = outbox.link(link_id)
    with session_scope(world.engine) as session:
        session.add(link)
        link.wix_contact_id = "contact-8"
    with session_scope(world.engine) as session:
        count = len(session.execute(select(Link)).scalars().all())
        reread = session.get(Link, link_id)
        assert reread is not None and reread.wix_contact_id == "contact-8"
    assert count == 1
