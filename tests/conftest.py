"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from syncd.retry import set_testing


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio only: that is what the daemon runs on."""
    return "asyncio"


@pytest.fixture(autouse=True)
def no_retry_waits() -> Iterator[None]:
    """Retries happen at once in tests (still bounded by attempts, as in production)."""
    set_testing(True)
    yield
    set_testing(False)
