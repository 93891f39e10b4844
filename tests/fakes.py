"""Test doubles of time, and a webhook receiver (the emulators are the doubles of the rest)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


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


class ManualClock:
    """A wall clock that only moves when told to (emulators take it as `clock`)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Receiver:
    """A webhook endpoint (`POST /hook`) that records raw bodies and headers and answers as
    scripted: `statuses` in order, then 200; `delay_seconds` before each answer."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.statuses: list[int] = []
        self.delay_seconds = 0.0
        self.app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    @property
    def texts(self) -> list[str]:
        """The bodies as text (a Wix webhook body is a JWT)."""
        return [body.decode() for body in self.bodies]

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        if self.delay_seconds:
            await anyio.sleep(self.delay_seconds)
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        return Response(b"", status_code=self.statuses.pop(0) if self.statuses else 200)
