"""Tables keep their keys unique, their enums typed and their datetimes aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import col, select

from syncd.store.db import session_scope
from syncd.store.models import (
    Conflict,
    ConflictStatus,
    Cursor,
    Direction,
    InboxEvent,
    Link,
    Operation,
    OperationStatus,
)

PARIS_SUMMER = timezone(timedelta(hours=2))


def _link(
    store: Engine, connector: str = "shop", wix_account_id: str = "w1", external_id: str = "e1"
) -> int:
    """Insert a link and return its id."""
    with session_scope(store) as session:
        link = Link(connector=connector, wix_account_id=wix_account_id, external_id=external_id)
        session.add(link)
        session.flush()
        assert link.id is not None
        return link.id


def test_inbox_event_is_stored_once_per_source_and_event_id(store: Engine) -> None:
    """A redelivered event (same source and event id) violates the unique key."""
    with session_scope(store) as session:
        session.add(InboxEvent(source="wix", event_id="ev1", event_type="account_updated"))
        session.add(InboxEvent(source="shop", event_id="ev1", event_type="account_updated"))

    with pytest.raises(IntegrityError), session_scope(store) as session:
        session.add(InboxEvent(source="wix", event_id="ev1", event_type="account_updated"))


def test_one_link_per_connector_and_wix_account(store: Engine) -> None:
    """A Wix account is linked at most once per connector."""
    _link(store)
    _link(store, connector="crm", external_id="e1")

    with pytest.raises(IntegrityError):
        _link(store, external_id="e2")


def test_one_link_per_connector_and_external_account(store: Engine) -> None:
    """An external account is linked at most once per connector."""
    _link(store)

    with pytest.raises(IntegrityError):
        _link(store, wix_account_id="w2")


def test_operation_needs_an_existing_link(store: Engine) -> None:
    """The outbox refuses an operation whose link does not exist (foreign keys enforced)."""
    with pytest.raises(IntegrityError), session_scope(store) as session:
        session.add(Operation(id="op-1", link_id=999, direction=Direction.TO_WIX, delta=5))


def test_datetimes_round_trip_timezone_aware(store: Engine) -> None:
    """Datetimes come back aware, in UTC, and equal to what was stored."""
    lease_until = datetime(2024, 7, 1, 14, 30, 5, 123456, tzinfo=PARIS_SUMMER)
    link_id = _link(store)
    with session_scope(store) as session:
        link = session.get(Link, link_id)
        assert link is not None
        link.lease_until = lease_until

    with session_scope(store) as session:
        link = session.get(Link, link_id)
        assert link is not None
        assert link.lease_until == lease_until
        assert link.lease_until is not None and link.lease_until.tzinfo == UTC
        assert link.created_at.tzinfo == UTC
        assert link.updated_at >= link.created_at


def test_datetime_comparisons_in_sql_follow_real_time(store: Engine) -> None:
    """A WHERE on a datetime column compares instants, whatever offset the value carries."""
    link_id = _link(store)
    lease_until = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
    with session_scope(store) as session:
        link = session.get(Link, link_id)
        assert link is not None
        link.lease_until = lease_until

    just_before = datetime(2024, 7, 1, 13, 59, tzinfo=PARIS_SUMMER)  # 11:59 UTC
    just_after = datetime(2024, 7, 1, 14, 1, tzinfo=PARIS_SUMMER)  # 12:01 UTC
    with session_scope(store) as session:
        assert session.exec(select(Link).where(col(Link.lease_until) < just_before)).all() == []
        expired = session.exec(select(Link).where(col(Link.lease_until) < just_after)).all()
        assert [link.id for link in expired] == [link_id]


def test_naive_datetimes_are_refused(store: Engine) -> None:
    """Storing a naive datetime is an error, not a silent guess at its zone."""
    with pytest.raises(StatementError, match="naive datetime"), session_scope(store) as session:
        session.add(Cursor(name="wix.transactions", value="x", updated_at=datetime(2024, 1, 1)))


def test_enums_round_trip_as_members(store: Engine) -> None:
    """Direction and status are stored as their string values and read back as enum members."""
    link_id = _link(store)
    with session_scope(store) as session:
        session.add(
            Operation(id="op-1", link_id=link_id, direction=Direction.TO_EXTERNAL, delta=-3)
        )
        session.add(Conflict(link_id=link_id, kind="both_changed", detail="link 1"))

    with session_scope(store) as session:
        operation = session.get(Operation, "op-1")
        assert operation is not None
        assert operation.direction is Direction.TO_EXTERNAL
        assert operation.status is OperationStatus.PENDING
        assert operation.attempts == 0
        conflict = session.exec(select(Conflict)).one()
        assert conflict.status is ConflictStatus.OPEN
        stored = session.connection().exec_driver_sql("SELECT direction, status FROM operations")
        assert stored.one() == ("to_external", "PENDING")


def test_session_scope_rolls_back_on_error(store: Engine) -> None:
    """An exception inside `session_scope` leaves nothing written."""
    with pytest.raises(RuntimeError), session_scope(store) as session:
        session.add(Cursor(name="wix.transactions", value="2024-01-01T00:00:00Z"))
        session.flush()
        raise RuntimeError("boom")

    with session_scope(store) as session:
        assert session.get(Cursor, "wix.transactions") is None
