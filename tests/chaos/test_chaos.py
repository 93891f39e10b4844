"""The chaos harness, short enough for CI: two seeds with one daemon on SQLite, and one seed
with three replicas sharing PostgreSQL (skipped when no server is named). The full version is
`python -m tests.chaos` (see tests/chaos/__init__.py)."""

from __future__ import annotations

import os

import pytest

from tests.chaos.harness import ChaosOptions, SeedResult, run_seed
from tests.chaos.report import details
from tests.databases import POSTGRES_ENV

SHORT = ChaosOptions(
    customers=30, ops=80, kills=10, uptime=(0.5, 1.6), downtime=(0.1, 0.4), settle_seconds=30
)


def _explained(result: SeedResult) -> str:
    return "\n".join([f"seed {result.seed}:", *details(result)])


@pytest.mark.parametrize("seed", [1, 2])
def test_no_point_is_lost_or_doubled_under_faults_and_kills(seed: int) -> None:
    """A backfill and one daemon, SIGKILLed ten times while customers act on both sides and
    both APIs fail, stall, rate-limit and drop or repeat webhooks: once calm returns every
    balance is its start plus every change (or parked, exactly, in a conflict), every write
    landed once, every acknowledged webhook was stored, nothing is left unresolved."""
    result = run_seed(seed, SHORT, say=lambda line: None)
    assert result.kills >= 10
    assert result.ops >= SHORT.ops
    assert not result.violations, _explained(result)


def test_replicas_share_the_work_and_finish_a_dead_ones() -> None:
    """Three daemons on one PostgreSQL database, webhooks spread over them, random ones
    SIGKILLed; then one is killed for good: the other two finish its work (its leases
    expire), no link is written by two at once, scheduled jobs take turns, nothing lost or
    doubled."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: the PostgreSQL replica chaos run is skipped")
    options = ChaosOptions(
        customers=30,
        ops=80,
        kills=10,
        replicas=3,
        postgres=base,
        uptime=(0.5, 1.6),
        downtime=(0.1, 0.4),
        settle_seconds=45,
    )
    result = run_seed(3, options, say=lambda line: None)
    assert result.kills >= 11  # ten while playing, one for good
    assert not result.violations, _explained(result)
