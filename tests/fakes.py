"""Test doubles of time (the emulators are the doubles of everything else)."""

from __future__ import annotations

import asyncio


class FakeTime:
    """A monotonic clock that moves only when someone sleeps on it.

    One instance can drive both a client's budget and an emulator's rate window, so a test
    of minutes of rate limiting runs in milliseconds.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.start = start
        self.now = start

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)  # let other tasks (and the served emulator) run
