"""Hostile input: the daemon's app as the runtime tests build it (their fixtures, reused), and
one Hypothesis profile so every fuzz run is the same run."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from tests.runtime.conftest import clients, remotes, site  # noqa: F401  (fixtures)

FUZZ = settings(
    derandomize=True,  # the same examples on every machine: CI is deterministic
    database=None,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow],
)
"""The settings every fuzz test starts from; each sets its own `max_examples` under it."""
