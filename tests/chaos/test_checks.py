"""The harness's own checks catch what they claim to: each test breaks one invariant by hand
(no daemon involved) and expects exactly that violation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from syncd.sandbox.delivery import DeliveryAttempt
from syncd.store.models import (
    Conflict,
    Direction,
    Link,
    Operation,
    OperationStatus,
)
from tests.chaos import checks
from tests.chaos.world import Customer, Shop, phone_of

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop() -> Shop:
    """Six customers, every one on both sides with equal balances (as after a backfill)."""
    shop = Shop.build(seed=5, customers=0)
    for number in range(6):
        shop.add(Customer(number, "equal", f"c{number}@example.com", phone_of(number)), 50, 50)
    return shop


def _store(
    shop: Shop, operations: list[Operation] | None = None, conflicts: list[Conflict] | None = None
) -> checks.Store:
    """The rows syncd would hold: every customer linked, bases at 50, the given writes."""
    links = [
        Link(
            id=c.number + 1,
            connector="shop",
            wix_account_id=c.wix_id or "",
            external_id=c.square_id or "",
            wix_base=50,
            ext_base=50,
        )
        for c in shop.customers
    ]
    return checks.Store(links, operations or [], conflicts or [], set())


def _op(op_id: str, status: OperationStatus, sent: int = 0, applied: int = 1) -> Operation:
    return Operation(
        id=op_id,
        link_id=1,
        direction=Direction.TO_WIX,
        delta=5,
        status=status,
        created_at=T0,
        sent_at=T0 + timedelta(seconds=sent),
        applied_at=T0 + timedelta(seconds=applied) if status is OperationStatus.APPLIED else None,
    )


def test_balanced_shop_passes(shop: Shop) -> None:
    """Every customer linked, both sides at start plus changes: no violation."""
    customer = shop.customers[0]
    shop.change_wix(customer, "earn", 10)
    shop.square.activity(customer.square_id or "", "adjust", 10, reason="syncd:op-1 from wix")
    store = _store(shop, operations=[_op("op-1", OperationStatus.APPLIED)])
    store.operations[0].direction = Direction.TO_EXTERNAL
    assert checks.balances(shop, store) == []
    assert checks.writes(shop, store) == []


def test_an_untracked_change_is_a_lost_or_invented_point(shop: Shop) -> None:
    """A balance that moved by something nobody played is reported with the evidence."""
    shop.wix.activity(shop.customers[2].wix_id or "", "earn", 7)
    [violation] = checks.balances(shop, _store(shop))
    assert "customer 2" in violation and "Wix 57, Square 50; expected 50" in violation


def test_points_held_in_a_conflict_are_accounted_exactly(shop: Shop) -> None:
    """Square went to -20 and Wix stopped at 0: right only with a conflict holding -20."""
    customer = shop.customers[1]
    shop.change_square(customer, "adjust", -70)
    shop.wix.activity(customer.wix_id or "", "adjust", -50, "syncd:op-2 from shop")
    assert len(checks.balances(shop, _store(shop))) == 1
    held = Conflict(link_id=2, kind="negative_balance", side="external", amount=-20, detail="")
    assert checks.balances(shop, _store(shop, conflicts=[held])) == []


def test_a_write_applied_twice_or_behind_a_void_operation_is_caught(shop: Shop) -> None:
    """Tags in the ledgers against the outbox: twice, VOID but landed, unknown, unresolved."""
    wix_id = shop.customers[0].wix_id or ""
    for tag in ("op-twice", "op-twice", "op-void", "op-unknown"):
        shop.wix.activity(wix_id, "adjust", 1, f"syncd:{tag} from shop")
    ops = [
        _op("op-twice", OperationStatus.APPLIED),
        _op("op-void", OperationStatus.VOID),
        _op("op-sent", OperationStatus.SENT),
    ]
    found = checks.writes(shop, _store(shop, operations=ops))
    assert len(found) == 4
    assert any("op-twice" in f and "2 times" in f for f in found)
    assert any("op-void" in f and "VOID" in f for f in found)
    assert any("op-unknown" in f and "no operation" in f for f in found)
    assert any("op-sent" in f and "left SENT" in f for f in found)


def test_an_acknowledged_webhook_missing_from_the_inbox_is_caught(shop: Shop) -> None:
    """A 2xx answer promises the event was stored."""
    stamp = T0.isoformat()
    shop.wix.webhooks.attempts += [
        DeliveryAttempt("ev-stored", "t", 1, "u", 200, None, 1, stamp),
        DeliveryAttempt("ev-lost", "t", 1, "u", 200, None, 1, stamp),
        DeliveryAttempt("ev-refused", "t", 1, "u", 502, None, 1, stamp),
    ]
    store = _store(shop)
    store.inbox.add(("wix", "ev-stored"))
    [violation] = checks.webhooks(shop, store)
    assert "ev-lost" in violation and "ev-refused" not in violation


def test_two_writes_of_one_link_in_flight_at_once_are_caught(shop: Shop) -> None:
    """A lease means one write of a link at a time."""
    ops = [
        _op("a", OperationStatus.APPLIED, sent=0, applied=2),
        _op("b", OperationStatus.APPLIED, sent=1, applied=3),
        _op("c", OperationStatus.APPLIED, sent=3, applied=4),
    ]
    [violation] = checks.leases(_store(shop, operations=ops))
    assert "write b" in violation and "while a was in flight" in violation


def test_a_turn_taken_before_the_last_one_expired_is_caught() -> None:
    """Turns of one job must follow each other by at least the hold."""
    sampler = checks.Sampler(engine=None)  # type: ignore[arg-type]
    hold = timedelta(seconds=0.8)
    sampler.turns["poll.wix"] = [("a", T0), ("b", T0 + hold), ("c", T0 + hold * 1.5)]
    [violation] = checks.turns(sampler, hold)
    assert "c took a turn" in violation
