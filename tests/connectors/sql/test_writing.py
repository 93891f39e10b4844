"""Writing to a POS database exactly once: replays, lost commits, compare-and-set, creation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table
from sqlalchemy.engine import Engine

from connectors.base import ReadBack
from connectors.sql.connector import SqlConnector
from connectors.sql.emulator import SqlTill
from syncd.clock import utcnow
from syncd.errors import (
    ConflictError,
    DuplicateError,
    NotFoundError,
    OutcomeUnknownError,
    SkipError,
)
from tests.connectors.sql.conftest import SQLITE_ONLY, TillMaker, connect, connect_to, people

pytestmark = pytest.mark.anyio
SINCE = utcnow() - timedelta(minutes=1)


async def test_a_write_lands_once_under_replays(till: SqlTill, pos: SqlConnector) -> None:
    """The same key three times adds the delta once; read_back finds it, not an unsent key;
    an account no row has is NotFoundError and nothing is written."""
    (member,) = till.seed(people(1, start=10))
    first = await pos.apply_delta(member, -30, key="op-1", reason="syncd:op-1 from wix")
    for _ in range(2):
        again = await pos.apply_delta(member, -30, key="op-1", reason="syncd:op-1 from wix")
        assert again == first
    assert till.balance(member) == 70 and till.applied_count("op-1") == 1
    found = await pos.read_back(member, key="op-1", since=SINCE)
    assert found.outcome is ReadBack.APPLIED and found.remote_id == first.remote_id
    missing = await pos.read_back(member, key="op-2", since=SINCE)
    assert missing.outcome is ReadBack.ABSENT
    for unknown in ("424242", "not-an-id"):
        with pytest.raises(NotFoundError):
            await pos.apply_delta(unknown, 5, key=f"op-{unknown}", reason="syncd:x")
    assert till.applied_count("op-") == 1


@pytest.mark.parametrize("database_url", SQLITE_ONLY, indirect=True)
async def test_the_ledger_row_carries_key_and_tag(make_till: TillMaker) -> None:
    """Ledger mode: one row with the operation id as key and the `syncd:<key>` reason."""
    till = make_till("ledger")
    (member,) = till.seed(people(1))
    async with connect(till) as pos:
        made = await pos.apply_delta(member, 5, key="op-tag", reason="from wix")
    assert till.ledger is not None
    with till.engine.connect() as connection:
        rows = connection.execute(
            till.ledger.select().where(till.ledger.c.operation_id == "op-tag")
        ).mappings()
        (row,) = list(rows)
    assert (str(row["id"]), row["points"], row["reason"]) == (
        made.remote_id,
        5,
        "syncd:op-tag from wix",
    )


async def test_a_lost_commit_is_unknown_then_read_back(till: SqlTill, pos: SqlConnector) -> None:
    """The commit lands and its answer is lost: OutcomeUnknownError; read_back says APPLIED
    and a replay changes nothing."""
    (member,) = till.seed(people(1, start=2))
    till.fail_after_commit(True)
    try:
        with pytest.raises(OutcomeUnknownError) as unknown:
            await pos.apply_delta(member, 7, key="op-lost", reason="syncd:op-lost")
    finally:
        till.fail_after_commit(False)
    assert unknown.value.account == member and "may have landed" in str(unknown.value)
    assert till.balance(member) == 27
    found = await pos.read_back(member, key="op-lost", since=SINCE)
    assert found.outcome is ReadBack.APPLIED
    await pos.apply_delta(member, 7, key="op-lost", reason="syncd:op-lost")
    assert till.balance(member) == 27 and till.applied_count("op-lost") == 1


@pytest.mark.parametrize("version_column", ["version", ""])
async def test_a_till_change_between_read_and_write_is_a_conflict(
    make_till: TillMaker, version_column: str
) -> None:
    """Column mode: the compare-and-set (on version, else on points) loses to a till sale
    made between syncd's read and its write; nothing of syncd's is written, and the same
    key succeeds once re-planned."""
    till = make_till("column")
    (member,) = till.seed(people(1, start=5))
    async with connect(till, version_column=version_column) as pos:
        till.change_before_next_write(member, 4)
        with pytest.raises(ConflictError) as lost:
            await pos.apply_delta(member, 10, key="op-cas", reason="syncd:op-cas")
        assert lost.value.account == member
        assert till.balance(member) == 54 and till.applied_count("op-cas") == 0
        absent = await pos.read_back(member, key="op-cas", since=SINCE)
        assert absent.outcome is ReadBack.ABSENT
        await pos.apply_delta(member, 10, key="op-cas", reason="syncd:op-cas")
    assert till.balance(member) == 64


async def test_create_account_once_per_key(till: SqlTill, pos: SqlConnector) -> None:
    """A member row with balance 0, made once for a key; another key makes another."""
    made = await pos.create_account(
        email="New@Example.com", phone="+14155550123", name="Ann Lee", key="create-1"
    )
    again = await pos.create_account(
        email="New@Example.com", phone="+14155550123", name="Ann Lee", key="create-1"
    )
    assert again == made and made.balance == 0
    assert (made.email, made.phone, made.name) == ("new@example.com", "+14155550123", "Ann Lee")
    other = await pos.create_account(email=None, phone=None, name=None, key="create-2")
    assert other.id != made.id
    assert [a["id"] for a in till.accounts()] == [made.id, other.id]
    assert [a.id for a in await pos.find_accounts("email", "new@example.com")] == [made.id]


@pytest.mark.parametrize("database_url", SQLITE_ONLY, indirect=True)
async def test_create_account_with_text_ids(make_till: TillMaker) -> None:
    """Text ids without a default are made from the key: a replay names the same row."""
    till = make_till("column", text_ids=True)
    async with connect(till) as pos:
        made = await pos.create_account(email="t@example.com", phone=None, name=None, key="k1")
        again = await pos.create_account(email="t@example.com", phone=None, name=None, key="k1")
    assert made.id == again.id and len(till.accounts()) == 1


def members_table(*extra: Column[int]) -> Table:
    """A members table of another shape than the demo POS's."""
    return Table(
        "members",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("email", String(200), unique=True),
        Column("phone", String(40)),
        Column("name", String(100)),
        Column("points", Integer, nullable=False, server_default="0"),
        *extra,
    )


COLUMN_MODE = {"mode": "column", "points_column": "points", "changes": "snapshot"}


async def test_a_taken_unique_email_is_a_duplicate(engine: Engine, database_url: str) -> None:
    """The database refuses a second row with a unique email: DuplicateError naming it."""
    members_table().create(engine)
    async with connect_to(database_url, **COLUMN_MODE) as pos:
        made = await pos.create_account(email="a@example.com", phone=None, name=None, key="a")
        with pytest.raises(DuplicateError) as taken:
            await pos.create_account(email="A@example.com", phone=None, name=None, key="b")
    assert taken.value.existing_id == made.id


@pytest.mark.parametrize("database_url", SQLITE_ONLY, indirect=True)
async def test_a_required_column_without_a_value_is_a_skip(
    engine: Engine, database_url: str
) -> None:
    """A required column syncd has no value for: SkipError naming it, nothing inserted."""
    members_table(Column("store_id", Integer, nullable=False)).create(engine)
    async with connect_to(database_url, **COLUMN_MODE) as pos:
        with pytest.raises(SkipError, match="column store_id needs a value syncd does not have"):
            await pos.create_account(email="c@example.com", phone=None, name=None, key="c")
        assert [page.accounts async for page in pos.iter_accounts()] == [[]]
