"""The applier: tagged writes through the outbox, bases moved with the write, read-back."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import update
from sqlmodel import select

from syncd.engine.outbox import Outbox, Planned, operation_id, tag
from syncd.engine.rules import Bases
from syncd.errors import RetriableError
from syncd.store.db import session_scope
from syncd.store.models import Conflict, Direction, Link, Operation, OperationStatus
from syncd.wix.models import Account
from tests.engine.conftest import World

pytestmark = pytest.mark.anyio


def operations(world: World) -> list[Operation]:
    with session_scope(world.engine) as session:
        return list(session.exec(select(Operation)).all())


def wix_tagged(world: World, operation: str) -> list[dict[str, object]]:
    return [
        t
        for t in world.wix_site.state.all_transactions()
        if str(t.get("description", "")).startswith(tag(operation))
    ]


def square_tagged(world: World, operation: str) -> list[dict[str, object]]:
    return [
        e
        for e in world.square.events()
        if str((e.get("adjust_points") or {}).get("reason", "")).startswith(tag(operation))
    ]


async def test_new_link_takes_the_external_balance(world: World) -> None:
    """Initial policy external: Wix gets the difference, once, tagged; bases end equal."""
    link_id = world.link("a@x.com", 30, 80, "+14155550001")
    result = await world.applier.sync(link_id)
    assert (result.wix_writes, result.wix_points, result.ext_writes) == (1, 50, 0)
    assert world.balances(link_id) == (80, 80)
    [op] = operations(world)
    assert op.status is OperationStatus.APPLIED and op.direction is Direction.TO_WIX
    assert len(wix_tagged(world, op.id)) == 1 and op.remote_tx_id
    link = Outbox(world.engine).link(link_id)
    assert (link.wix_base, link.ext_base) == (80, 80)
    again = await world.applier.sync(link_id)
    assert not again.changed


async def test_changes_on_both_sides_are_merged(world: World) -> None:
    """A till sale and an online redemption between two syncs both survive."""
    link_id = world.link("b@x.com", 100, 100, "+14155550002")
    await world.applier.sync(link_id)
    link = Outbox(world.engine).link(link_id)
    world.wix_site.activity(link.wix_account_id, "redeem", 30)
    world.square.activity(link.external_id, "sale", 50)
    result = await world.applier.sync(link_id)
    assert (result.wix_points, result.ext_points) == (50, -30)
    assert world.balances(link_id) == (120, 120)
    for op in operations(world):
        found = (
            wix_tagged(world, op.id)
            if op.direction is Direction.TO_WIX
            else square_tagged(world, op.id)
        )
        assert len(found) == 1, op


async def test_stale_revision_is_replanned(world: World) -> None:
    """A Wix change between our read and our write: 409, re-read, re-plan, nothing lost."""
    link_id = world.link("c@x.com", 10, 40, "+14155550003")
    link = Outbox(world.engine).link(link_id)
    stale = await world.wix.get_account(link.wix_account_id)
    world.wix_site.activity(link.wix_account_id, "earn", 5)  # the customer earns online
    result = await world.applier.sync(link_id, wix_account=stale)
    assert result.replans == 1
    statuses = sorted(op.status.value for op in operations(world))
    assert statuses == ["APPLIED", "APPLIED", "VOID"]
    # The link was born at (10, 40) when its bases were set; the +5 earned online after that
    # is a real change and is carried too: 40 + 5 on both sides.
    assert world.balances(link_id) == (45, 45)


async def test_unknown_wix_outcome_is_read_back_not_resent(world: World) -> None:
    """Wix applied the adjust but its answer was a 500: the write is read back, never resent
    (and while Wix keeps failing, the operation waits SENT for the next sync)."""
    link_id = world.link("d@x.com", 0, 70, "+14155550004")
    link = Outbox(world.engine).link(link_id)
    wix = await world.wix.get_account(link.wix_account_id)
    ext = await world.connector.get_account(link.external_id)
    world.wix_site.knobs.faults.fail_after_commit_rate = 1.0  # every answer lost, reads too
    try:
        with pytest.raises(RetriableError):
            await world.applier.sync(link_id, wix_account=wix, ext_account=ext)
    finally:
        world.wix_site.knobs.faults.fail_after_commit_rate = 0.0
    [op] = operations(world)
    assert op.status is OperationStatus.SENT
    result = await world.applier.sync(link_id)
    assert not result.changed  # settled by reading back, not by writing again
    [op] = operations(world)
    assert op.status is OperationStatus.APPLIED and len(wix_tagged(world, op.id)) == 1
    assert world.balances(link_id) == (70, 70)


async def test_recovery_settles_writes_left_by_a_crash(world: World) -> None:
    """On start, a SENT write that reached Wix becomes APPLIED (bases moved); one that never
    left becomes VOID and is planned again — each point written exactly once."""
    applied_link = world.link("e@x.com", 0, 25, "+14155550005")
    lost_link = world.link("f@x.com", 0, 35, "+14155550006")
    outbox = Outbox(world.engine)
    for link_id, reached_wix in ((applied_link, True), (lost_link, False)):
        link = outbox.link(link_id)
        account = await world.wix.get_account(link.wix_account_id)
        outbox.set_bases(link_id, 0, 0)
        planned = Planned(0, 25 if reached_wix else 35, Bases(0, 0), account.revision)
        delta = planned.ext
        op = operation_id(link_id, planned, Direction.TO_WIX, delta)
        outbox.begin_send(link, op, Direction.TO_WIX, delta, delta, planned)
        if reached_wix:  # the process died after Wix applied it, before we recorded it
            await world.wix.adjust_points(
                account.id, amount=delta, revision=account.revision, description=f"{tag(op)} x"
            )
    assert await world.applier.recover() == 2
    statuses = {op.link_id: op.status for op in operations(world)}
    assert statuses == {applied_link: OperationStatus.APPLIED, lost_link: OperationStatus.VOID}
    for link_id in (applied_link, lost_link):
        await world.applier.sync(link_id)
    assert world.balances(applied_link) == (25, 25)
    assert world.balances(lost_link) == (35, 35)
    assert sum(len(wix_tagged(world, op.id)) for op in operations(world)) == 2


async def test_square_write_lost_answers_apply_once(world: World) -> None:
    """Square applied an adjust but every answer was a 500: the connector's retries replay the
    same key (nothing applied twice), the outcome is read back later, and the write counts once."""
    link_id = world.link("g@x.com", 60, 60, "+14155550007")
    await world.applier.sync(link_id)
    link = Outbox(world.engine).link(link_id)
    world.wix_site.activity(link.wix_account_id, "redeem", 20)
    wix = await world.wix.get_account(link.wix_account_id)
    ext = await world.connector.get_account(link.external_id)
    world.square.knobs.faults.fail_after_commit_rate = 1.0
    try:
        with pytest.raises(RetriableError):  # the read-back fails too while Square does
            await world.applier.sync(link_id, wix_account=wix, ext_account=ext)
    finally:
        world.square.knobs.faults.fail_after_commit_rate = 0.0
    result = await world.applier.sync(link_id)
    assert not result.changed
    assert world.balances(link_id) == (40, 40)
    [op] = [o for o in operations(world) if o.direction is Direction.TO_EXTERNAL]
    assert op.status is OperationStatus.APPLIED
    assert len(square_tagged(world, op.id)) == 1


async def test_negative_is_clamped_and_accounted(world: World) -> None:
    """A Square balance below zero on a new link: Wix goes to 0, the rest is an open
    conflict of exactly the remainder, and nothing more is planned."""
    link_id = world.link("h@x.com", 30, -20, "+14155550008")
    result = await world.applier.sync(link_id)
    assert world.balances(link_id) == (0, -20)
    assert result.conflicts == 1
    with session_scope(world.engine) as session:
        [conflict] = session.exec(select(Conflict)).all()
    assert (conflict.kind, conflict.side, conflict.amount) == ("negative_balance", "external", -20)
    assert not (await world.applier.sync(link_id)).changed


async def test_given_balances_save_reads(world: World) -> None:
    """Balances the caller just paged are used as they are: one write, no extra read."""
    link_id = world.link("i@x.com", 5, 9, "+14155550009")
    link = Outbox(world.engine).link(link_id)
    wix = await world.wix.get_account(link.wix_account_id)
    ext = await world.connector.get_account(link.external_id)
    calls = (world.wix.calls, world.connector.calls)
    await world.applier.sync(link_id, wix_account=replace(wix), ext_account=ext)
    assert (world.wix.calls - calls[0], world.connector.calls - calls[1]) == (1, 0)
    assert isinstance(wix, Account)


async def test_a_write_to_wix_marks_the_other_spokes_of_that_account(world: World) -> None:
    """Points carried to Wix from one spoke mark every other spoke's link of that Wix account
    dirty with the write (not the origin's, not other accounts'); a write out of Wix does not."""
    link_id = world.link("fan@x.com", 10, 40, "+14155550009")
    wix_account = Outbox(world.engine).link(link_id).wix_account_id
    with session_scope(world.engine) as session:
        sibling = Link(connector="crm", wix_account_id=wix_account, external_id="c-1")
        stranger = Link(connector="crm", wix_account_id="someone-else", external_id="c-2")
        session.add_all([sibling, stranger])
        session.flush()
        sibling_id, stranger_id = sibling.id, stranger.id

    def dirty() -> list[bool]:
        with session_scope(world.engine) as session:
            return [
                bool(session.get(Link, i).dirty)  # type: ignore[union-attr]
                for i in (link_id, sibling_id, stranger_id)
            ]

    await world.applier.sync(link_id)
    assert dirty() == [False, True, False]
    with session_scope(world.engine) as session:
        session.execute(update(Link).values(dirty=False))
    world.wix_site.activity(wix_account, "earn", 5)
    result = await world.applier.sync(link_id)
    assert result.ext_writes == 1 and not result.wix_writes
    assert dirty() == [False, False, False]
