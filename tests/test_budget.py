"""The client-side budget: never more than the limit in any minute, and a 429 pauses everyone."""

from __future__ import annotations

import bisect

import anyio
import pytest

from syncd.budget import Priority, TokenBucket, spending
from tests.fakes import FakeTime


def max_in_window(stamps: list[float], window: float = 60.0) -> int:
    return max(bisect.bisect_left(stamps, start + window) - i for i, start in enumerate(stamps))


@pytest.mark.anyio
@pytest.mark.parametrize("per_minute", [200, 20_000])
async def test_no_window_exceeds_limit(per_minute: int) -> None:
    """Acquiring as fast as allowed never puts more than the limit in a sliding minute."""
    fake = FakeTime()
    bucket = TokenBucket(per_minute, clock=fake.clock, sleep=fake.sleep)
    stamps = []
    for _ in range(per_minute * 3):
        await bucket.acquire()
        stamps.append(fake.now)
    assert max_in_window(stamps) <= per_minute
    # ...and it spends the budget: three minutes' worth takes a little over three minutes.
    assert 180 <= stamps[-1] - fake.start <= 180 * 1.05


@pytest.mark.anyio
async def test_pause_holds_every_caller() -> None:
    """After pause(30) the next acquisition happens no sooner than 30 seconds later."""
    fake = FakeTime()
    bucket = TokenBucket(200, clock=fake.clock, sleep=fake.sleep)
    await bucket.acquire()
    bucket.pause(30)
    await bucket.acquire()
    assert fake.now - fake.start >= 30


@pytest.mark.anyio
async def test_higher_priority_callers_go_first() -> None:
    """Callers queued while the budget is paused are served sync, then poll, then backfill —
    whatever order they arrived in."""
    now = [0.0]

    async def tick(_seconds: float) -> None:
        await anyio.sleep(0)  # time moves only when the test moves it

    bucket = TokenBucket(60, clock=lambda: now[0], sleep=tick)  # one a second, burst 1
    bucket.pause(10)
    order: list[str] = []

    async def caller(name: str, priority: Priority) -> None:
        with spending(priority):
            await bucket.acquire()
        order.append(name)

    async with anyio.create_task_group() as group:
        for name, priority in (
            ("backfill", Priority.BACKFILL),
            ("poll", Priority.POLL),
            ("sync", Priority.SYNC),
        ):
            group.start_soon(caller, name, priority)
        for moment in (10.0, 11.1, 12.2):
            for _ in range(20):
                await anyio.sleep(0)
            now[0] = moment
    assert order == ["sync", "poll", "backfill"]
