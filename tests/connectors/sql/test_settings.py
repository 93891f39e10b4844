"""The `sql` connector's settings: defaults, secrets, and one clear line per mistake."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

import connectors
from connectors.base import Capabilities
from connectors.sql.connector import SqlConnector
from connectors.sql.settings import SqlSettings
from syncd.errors import ConfigError
from syncd.settings import ConnectorSettings, describe_error

URL = "postgresql://pos:s3cr3t-pw@db.internal:5432/pos"
LEDGER = {"name": "till", "type": "sql", "url": URL, "mode": "ledger", "ledger_table": "ledger"}


def problems(values: dict[str, Any]) -> list[str]:
    """The lines an operator reads for these values (as `connectors.typed_settings` words them)."""
    with pytest.raises(ValidationError) as refused:
        SqlSettings.model_validate(values)
    return [describe_error(err) for err in refused.value.errors()]


def test_defaults_describe_a_typical_schema() -> None:
    """members(id, email, phone, name) and points_ledger's usual columns; syncd's own tables."""
    settings = SqlSettings.model_validate(LEDGER)
    assert (settings.accounts_table, settings.id_column) == ("members", "id")
    assert (settings.email_column, settings.phone_column, settings.name_column) == (
        "email",
        "phone",
        "name",
    )
    assert (settings.ledger_account_column, settings.ledger_key_column) == (
        "member_id",
        "operation_id",
    )
    assert (settings.applied_table, settings.snapshot_table) == ("syncd_applied", "syncd_snapshot")
    assert settings.create_tables and settings.changes == "updated_at"
    assert (settings.page_size, settings.schema_) == (500, None)
    assert settings.balance_source == ("ledger", "member_id", "points")


def test_url_is_a_secret_shown_masked() -> None:
    """The password never appears in repr or in the masked URL."""
    settings = SqlSettings.model_validate(LEDGER)
    assert "s3cr3t" not in repr(settings) and "s3cr3t" not in settings.masked_url
    assert settings.masked_url == "postgresql://pos:***@db.internal:5432/pos"
    assert settings.sqlalchemy_url().drivername == "postgresql+psycopg"


def test_blank_switches_an_optional_column_off() -> None:
    """`""` (TOML has no null) means the table has no such column; `schema` is read too."""
    settings = SqlSettings.model_validate(
        LEDGER | {"phone_column": "", "ledger_reason_column": " ", "schema": "pos"}
    )
    assert settings.phone_column is None and settings.ledger_reason_column is None
    assert settings.schema_ == "pos"


def test_balance_view_defaults_to_the_ledger_names() -> None:
    """A balance view is read by the ledger's account and points column names unless named."""
    settings = SqlSettings.model_validate(
        LEDGER | {"balance_view": "balances", "balance_view_points_column": "total"}
    )
    assert settings.balance_source == ("balances", "member_id", "total")


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (
            {"mode": "column", "ledger_table": None},
            'mode = "column" needs points_column',
        ),
        ({"ledger_table": ""}, 'mode = "ledger" needs ledger_table'),
        (
            {"mode": "column", "points_column": "points"},
            'changes = "updated_at" in column mode needs updated_at_column',
        ),
        (
            {"ledger_created_at_column": ""},
            'changes = "updated_at" in ledger mode needs ledger_created_at_column',
        ),
        (
            {"mode": "column", "points_column": "p", "changes": "snapshot", "balance_view": "v"},
            'balance_view is for mode = "ledger"',
        ),
        ({"mode": "append"}, "connectors: 'append' is not allowed; allowed: 'ledger', 'column'"),
        ({"url": ""}, "url: is empty"),
        ({"base_url": "https://pos.example.com"}, "not base_url"),
        ({"page_size": 0}, "page_size"),
        ({"ledger_tabel": "x"}, "ledger_tabel: unknown key"),
        ({"applied_table": "t", "snapshot_table": "t"}, "must be different tables"),
    ],
)
def test_mistakes_are_one_clear_line(bad: dict[str, Any], says: str) -> None:
    """Each mistake is refused with a line naming the key and what to do."""
    lines = problems(LEDGER | bad)
    assert len(lines) == 1 and says.replace("connectors: ", "mode: ") in lines[0], lines


def test_a_bad_url_is_refused_without_its_password() -> None:
    """A URL that does not parse stops the connector at start, its password masked."""
    settings = SqlSettings.model_validate(LEDGER | {"url": "postgresql://pos:s3cr3t-pw@db:x/p"})
    with pytest.raises(ConfigError) as refused:
        SqlConnector(settings)
    (line,) = refused.value.problems
    assert line.startswith("connectors.till.url: 'postgresql://pos:***@db:x/p' is not a SQL")
    assert "s3cr3t" not in line


def test_a_missing_driver_is_a_config_error() -> None:
    """A URL for a database whose driver is not installed stops at start, password masked."""
    settings = SqlSettings.model_validate(LEDGER | {"url": "mysql://pos:s3cr3t-pw@db/pos"})
    with pytest.raises(ConfigError) as refused:
        SqlConnector(settings)
    (line,) = refused.value.problems
    assert line.startswith("connectors.till.url: cannot use mysql://pos:***@db/pos")
    assert "s3cr3t" not in line


def test_generic_table_becomes_sql_settings() -> None:
    """A generic [[connectors]] table (base_url dumped as None) validates as SqlSettings."""
    table = ConnectorSettings.model_validate(LEDGER | {"url": "sqlite:///pos.db"})
    connector = SqlConnector(table)
    assert isinstance(connector.settings, SqlSettings) and connector.name == "till"
    assert connector.settings.ledger_table == "ledger"


def test_capabilities() -> None:
    """Delta writes with keys, a change feed, email/phone matching, creation; no webhooks."""
    assert SqlConnector.capabilities == Capabilities(
        delta_writes=True,
        idempotency_keys=True,
        webhooks=False,
        change_feed=True,
        find_by=frozenset({"email", "phone"}),
        create_accounts=True,
    )
    assert SqlConnector.settings_model is SqlSettings


def test_registered_as_entry_point() -> None:
    """The `sql` type is found through the `syncd.connectors` entry point."""
    types = connectors.connector_types()
    if "sql" not in types:
        pytest.skip("installed metadata predates the entry point: run `pip install -e .`")
    assert types["sql"] is SqlConnector
