"""prepare(): the configured tables and columns checked, syncd's own tables created."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, inspect
from sqlalchemy.engine import Engine, make_url

from connectors.sql.emulator import SqlTill
from syncd.errors import FatalError
from tests.connectors.sql.conftest import (
    POSTGRES_ONLY,
    SQLITE_ONLY,
    TillMaker,
    connect,
    connect_to,
    people,
)

pytestmark = pytest.mark.anyio


async def test_prepare_creates_syncds_own_tables_once(till: SqlTill) -> None:
    """The applied table (and the snapshot table for that feed) is made once, then found."""
    async with connect(till, changes="snapshot") as pos:
        made = await pos.prepare()
        assert sorted(line.split()[2] for line in made) == ["syncd_applied", "syncd_snapshot"]
        assert await pos.prepare() == []
    with till.engine.connect() as connection:
        assert inspect(connection).has_table("syncd_applied")


@pytest.mark.parametrize("database_url", SQLITE_ONLY, indirect=True)
async def test_first_use_checks_and_creates_without_prepare(till: SqlTill) -> None:
    """A connector used before prepare() reflects the schema and makes its tables itself."""
    (member,) = till.seed(people(1))
    async with connect(till) as pos:
        await pos.apply_delta(member, 2, key="op-first", reason="syncd:op-first")
    assert till.balance(member) == 2


MISSING = [
    (
        {"ledger_key_column": "op_key"},
        "column points_ledger.op_key not found (ledger_key_column): it has id, member_id, "
        "points, operation_id, reason, created_at; set ledger_key_column to one of them",
    ),
    (
        {"phone_column": "mobile"},
        "column members.mobile not found (phone_column): it has id, email, phone, name, "
        'created_at; set phone_column to one of them (or "" if it has none)',
    ),
    (
        {"accounts_table": "loyalty_members"},
        "table 'loyalty_members' not found (accounts_table): name an existing table or view",
    ),
    (
        {"ledger_points_column": "reason"},
        "column points_ledger.reason (ledger_points_column) holds VARCHAR(500), not whole "
        "numbers: name an integer column",
    ),
]


async def test_prepare_names_what_is_missing_in_one_line(make_till: TillMaker) -> None:
    """A table or column the config names but the database lacks: FatalError, one line."""
    till = make_till("ledger")
    for config, says in MISSING:
        async with connect(till, **config) as pos:
            with pytest.raises(FatalError) as missing:
                await pos.prepare()
        assert str(missing.value) == f"pos: {says}"


@pytest.mark.parametrize("database_url", SQLITE_ONLY, indirect=True)
async def test_own_tables_are_not_created_when_not_allowed(till: SqlTill) -> None:
    """create_tables = false: a missing applied table is a FatalError saying what to do."""
    async with connect(till, create_tables=False) as pos:
        with pytest.raises(FatalError, match="syncd_applied does not exist and create_tables"):
            await pos.prepare()
    with till.engine.connect() as connection:
        assert not inspect(connection).has_table("syncd_applied")


async def test_a_ledger_key_without_a_unique_constraint_is_fatal(
    engine: Engine, database_url: str
) -> None:
    """Without a unique key column a replay could land twice: prepare() refuses, with the fix."""
    metadata = MetaData()
    Table("members", metadata, Column("id", Integer, primary_key=True), Column("email", String))
    Table(
        "ledger",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("member_id", Integer),
        Column("points", Integer),
        Column("operation_id", String(100)),
    )
    metadata.create_all(engine)
    config = {
        "mode": "ledger",
        "ledger_table": "ledger",
        "phone_column": "",
        "name_column": "",
        "ledger_reason_column": "",
        "ledger_created_at_column": "",
        "changes": "snapshot",
    }
    async with connect_to(database_url, **config) as pos:
        with pytest.raises(
            FatalError, match=r"no unique constraint.*CREATE UNIQUE INDEX ON ledger"
        ):
            await pos.prepare()


@pytest.mark.parametrize("database_url", POSTGRES_ONLY, indirect=True)
async def test_a_named_schema_holds_every_table(make_till: TillMaker, database_url: str) -> None:
    """`schema` names where the POS's tables are; syncd's own are made there too."""
    till = make_till("ledger")
    (member,) = till.seed(people(1))
    options = str(make_url(database_url).query["options"])
    schema = options.removeprefix("-csearch_path=")
    async with connect(till, schema=schema) as pos:
        made = await pos.prepare()
        assert made == [
            f"created table {schema}.syncd_applied (syncd's own, for the sql connector)"
        ]
        assert (await pos.get_account(member)).balance == 0
