"""The till: a demo POS database changed as a point-of-sale would, and its fault switches."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import OperationalError

from connectors.sql.emulator import SqlTill
from tests.connectors.sql.conftest import SQLITE_ONLY, TillMaker, connect, people

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("database_url", SQLITE_ONLY, indirect=True),  # the till itself
]


def test_the_till_changes_balances(till: SqlTill) -> None:
    """Seeded balances, then sales, redemptions and corrections, as the POS reads them."""
    first, second = till.seed(people(2, start=1))
    till.sale(first, 25)
    till.redeem(first, 5)
    till.correct(second, -3)
    assert (till.balance(first), till.balance(second)) == (30, 17)
    listed = till.accounts()
    assert [(a["id"], a["email"], a["balance"]) for a in listed] == [
        (first, "Member1@Example.com", 30),
        (second, "Member2@Example.com", 17),
    ]


def test_ledger_mode_writes_rows_without_keys(make_till: TillMaker) -> None:
    """Opening balances and till changes are ledger rows with no operation id."""
    till = make_till("ledger")
    (member,) = till.seed(people(1, start=2))
    till.sale(member, 5)
    assert till.ledger is not None
    with till.engine.connect() as connection:
        rows = connection.execute(select(till.ledger.c.points, till.ledger.c.operation_id)).all()
    assert [tuple(r) for r in rows] == [(20, None), (5, None)]
    assert till.applied_count("") == 0


def test_column_mode_bumps_version_and_updated_at(make_till: TillMaker) -> None:
    """A till change moves the points, the version and updated_at together."""
    till = make_till("column")
    (member,) = till.seed(people(1))
    (before,) = till.accounts()
    till.sale(member, 5)
    (after,) = till.accounts()
    assert (after["points"], after["version"]) == (5, before["version"] + 1)
    assert after["updated_at"] > before["updated_at"]
    with pytest.raises(KeyError):
        till.sale("424242", 1)


async def test_applied_count_counts_syncds_writes_by_key(till: SqlTill) -> None:
    """How many times syncd's operations landed, by operation id or tag prefix; the till's
    own rows are not counted."""
    (member,) = till.seed(people(1))
    till.sale(member, 5)
    async with connect(till) as pos:
        for key in ("op-a-1", "op-a-2", "op-b-1"):
            await pos.apply_delta(member, 1, key=key, reason=f"syncd:{key}")
    assert till.operation_ids() == ["op-a-1", "op-a-2", "op-b-1"]
    counts = [till.applied_count(p) for p in ("op-a-", "op-", "x", "syncd:", "syncd:op-b")]
    assert counts == [2, 3, 0, 3, 1]


def test_fail_after_commit_spares_the_till_and_other_databases(
    till: SqlTill, tmp_path: Path
) -> None:
    """Only other engines on the till's database lose their commit answers; their writes land."""
    till.fail_after_commit(True)
    try:
        (member,) = till.seed(people(1))  # the till's own commits are untouched
        syncd_side = create_engine(till.url)
        elsewhere = create_engine(f"sqlite:///{tmp_path / 'other.db'}")
        lost = pytest.raises(OperationalError, match="server closed the connection")
        with lost, syncd_side.begin() as connection:
            connection.execute(text("UPDATE members SET name = 'Lost Answer'"))
        with elsewhere.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
        syncd_side.dispose()
        elsewhere.dispose()
    finally:
        till.fail_after_commit(False)
    assert [a["name"] for a in till.accounts() if a["id"] == member] == ["Lost Answer"]
