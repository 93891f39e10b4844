"""Config keys of a `type = "sql"` connector table: a POS or membership database.

    [[connectors]]
    name = "till"
    type = "sql"
    url_file = "secrets/pos_db_url"   # or url = "postgresql+psycopg://syncd:...@db:5432/pos"
    mode = "ledger"                   # syncd inserts rows into a points ledger...
    ledger_table = "points_ledger"

    [[connectors]]
    name = "members"
    type = "sql"
    url = "sqlite:///members.db"
    mode = "column"                   # ...or updates a points column with a compare-and-set
    points_column = "points"
    version_column = "version"
    updated_at_column = "updated_at"

Table and column names are identifiers, quoted by SQLAlchemy, never pasted into SQL. The
defaults describe a typical schema: accounts in `members (id, email, phone, name)`, a ledger
`points_ledger (id, member_id, points, operation_id, reason, created_at)`. An optional column
that a database does not have is switched off with `""` (TOML has no null).

The URL holds a password: it is a secret (`SecretStr`), shown only masked.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator
from sqlalchemy.engine import URL, make_url

from syncd.settings import ConnectorSettings, mask_url

Mode = Literal["ledger", "column"]
Changes = Literal["updated_at", "snapshot"]
Name = Annotated[str, Field(min_length=1, max_length=128)]
OptionalName = Annotated[str | None, Field(max_length=128)]
URL_EXAMPLES = "e.g. sqlite:///pos.db or postgresql+psycopg://user:password@host:5432/pos"
_OPTIONAL_NAMES = (
    "email_column",
    "phone_column",
    "name_column",
    "points_column",
    "version_column",
    "updated_at_column",
    "ledger_table",
    "ledger_reason_column",
    "ledger_created_at_column",
    "balance_view",
    "balance_view_account_column",
    "balance_view_points_column",
    "schema_",
)


class SqlSettings(ConnectorSettings):
    """One database reachable by a SQLAlchemy URL, holding accounts and their points."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["sql"]
    url: SecretStr
    mode: Mode
    """`ledger`: syncd inserts one row per write into `ledger_table` (the balance is the sum of
    an account's rows, or `balance_view`). `column`: syncd updates `points_column` with a
    compare-and-set and records each write in `applied_table`."""
    schema_: OptionalName = Field(None, alias="schema")
    """The database schema holding every table (`schema` in config; `schema_` here because
    pydantic's BaseModel has a `schema` method); unset: the connection's default."""

    accounts_table: Name = "members"
    id_column: Name = "id"
    email_column: OptionalName = "email"
    phone_column: OptionalName = "phone"
    name_column: OptionalName = "name"

    points_column: OptionalName = None
    """Column mode: the accounts table's points column (required there)."""
    version_column: OptionalName = None
    """Column mode: an integer every writer bumps on each change (compare-and-set on it)."""
    updated_at_column: OptionalName = None
    """Column mode: when the row last changed (the `updated_at` change feed reads it)."""

    ledger_table: OptionalName = None
    """Ledger mode: the table syncd inserts into (required there)."""
    ledger_id_column: Name = "id"
    ledger_account_column: Name = "member_id"
    ledger_points_column: Name = "points"
    ledger_key_column: Name = "operation_id"
    """Holds syncd's operation id; needs a unique constraint (that is what makes a replay safe)."""
    ledger_reason_column: OptionalName = "reason"
    ledger_created_at_column: OptionalName = "created_at"

    balance_view: OptionalName = None
    """Ledger mode: a view or table holding each account's balance, for a POS that computes
    balances otherwise than as the sum of the ledger."""
    balance_view_account_column: OptionalName = None
    """Defaults to `ledger_account_column`."""
    balance_view_points_column: OptionalName = None
    """Defaults to `ledger_points_column`."""

    applied_table: Name = "syncd_applied"
    snapshot_table: Name = "syncd_snapshot"
    create_tables: bool = True
    """Let `prepare()` create syncd's own tables (`applied_table`, `snapshot_table`); syncd
    never creates or alters the POS's own tables."""
    changes: Changes = "updated_at"
    """How the change feed finds changes: by timestamp (`ledger_created_at_column` in ledger
    mode, `updated_at_column` in column mode) or by comparing balances with a snapshot."""
    page_size: Annotated[int, Field(ge=1, le=10_000)] = 500
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    """How long to wait to connect and for a lock held by another writer."""

    @property
    def masked_url(self) -> str:
        """The URL with its password replaced by `***`, for messages."""
        return mask_url(self.url.get_secret_value())

    def sqlalchemy_url(self) -> URL:
        """The parsed URL (`postgresql://` means psycopg 3, the driver syncd ships)."""
        parsed = make_url(self.url.get_secret_value())
        if parsed.drivername in ("postgres", "postgresql"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed

    @field_validator("url", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        # Only emptiness is checked here: pydantic puts the input in its error, and the URL
        # may hold a password. A URL that does not parse is refused when the connector is
        # made (ConfigError, URL masked: `client.make_engine`).
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and not text.strip():
            raise ValueError(f"is empty: set the database's SQLAlchemy URL, {URL_EXAMPLES}")
        return SecretStr(text.strip()) if isinstance(text, str) else value

    @field_validator("base_url")
    @classmethod
    def _no_base_url(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError("sql connectors are reached by `url` (a database URL), not base_url")
        return value

    @field_validator(*_OPTIONAL_NAMES, mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    @model_validator(mode="after")
    def _mode_keys(self) -> SqlSettings:
        if self.mode == "column":
            self._column_mode_keys()
        else:
            self._ledger_mode_keys()
        if self.applied_table == self.snapshot_table:
            raise ValueError("applied_table and snapshot_table must be different tables")
        return self

    def _column_mode_keys(self) -> None:
        if not self.points_column:
            raise ValueError(
                'mode = "column" needs points_column: the accounts table\'s points column '
                '(e.g. points_column = "points")'
            )
        if self.balance_view:
            raise ValueError(
                'balance_view is for mode = "ledger"; in column mode the balance is points_column'
            )
        if self.changes == "updated_at" and not self.updated_at_column:
            raise ValueError(
                'changes = "updated_at" in column mode needs updated_at_column (when each row '
                'last changed); without one, set changes = "snapshot"'
            )

    def _ledger_mode_keys(self) -> None:
        if not self.ledger_table:
            raise ValueError(
                'mode = "ledger" needs ledger_table: the table syncd inserts point rows into '
                '(e.g. ledger_table = "points_ledger")'
            )
        if self.changes == "updated_at" and not self.ledger_created_at_column:
            raise ValueError(
                'changes = "updated_at" in ledger mode needs ledger_created_at_column (when '
                'each ledger row was made); without one, set changes = "snapshot"'
            )

    # -- the names as used, defaults resolved ---------------------------------------------------

    @property
    def balance_source(self) -> tuple[str, str, str]:
        """(table, account column, points column) the ledger-mode balance is read from."""
        assert self.ledger_table is not None
        if self.balance_view:
            return (
                self.balance_view,
                self.balance_view_account_column or self.ledger_account_column,
                self.balance_view_points_column or self.ledger_points_column,
            )
        return self.ledger_table, self.ledger_account_column, self.ledger_points_column
