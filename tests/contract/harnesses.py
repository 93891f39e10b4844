"""Every connector's harness, by name: the contract suite runs once per entry."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from tests.contract.base import Harness
from tests.contract.harness_hubspot import HubSpotHarness
from tests.contract.harness_sql import SqlHarness
from tests.contract.harness_square import SquareHarness

HARNESSES: dict[str, Callable[[], Harness]] = {
    "square": SquareHarness,
    "hubspot": HubSpotHarness,
    "sql-sqlite": partial(SqlHarness, "sqlite", "ledger"),
    "sql-postgres": partial(SqlHarness, "postgres", "ledger"),
    "sql-sqlite-column": partial(SqlHarness, "sqlite", "column"),
    "sql-postgres-column": partial(SqlHarness, "postgres", "column"),
}
