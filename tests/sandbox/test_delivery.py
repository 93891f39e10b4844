"""The shared webhook dispatcher with a toy vendor: what the vendor decides, what is shared."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import pytest

from syncd.sandbox.delivery import Retry, WebhookDispatcher
from syncd.sandbox.faults import DeliveryFaults
from syncd.sandbox.wire import Json
from tests.sandbox.conftest import ManualClock

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class ToyEvent:
    event_id: str
    event_type: str
    body: str

    def summary(self) -> Json:
        return {"id": self.event_id}


@dataclass
class ToyKnobs:
    webhook_timeout_seconds: float = 1.0
    webhook_retry_gaps_seconds: tuple[float, ...] = (0.0, 0.0)
    webhook_hold_ms: int = 0
    delivery: DeliveryFaults = field(default_factory=DeliveryFaults)


class Hook:
    """A receiver behind httpx.MockTransport: records requests, answers as scripted."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self.answer)

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200)


def toy_dispatcher(hook: Hook, seen: list[Retry | None]) -> WebhookDispatcher[str, ToyEvent]:
    """Events are the change text; each try says which retry it is."""

    def build(change: str) -> ToyEvent:
        return ToyEvent(f"ev-{change}", "toy.changed", f"<{change}>")

    def headers(event: ToyEvent, retry: Retry | None) -> dict[str, str]:
        seen.append(retry)
        return {"x-toy-retry": str(retry.number if retry else 0)}

    clock = ManualClock()
    return WebhookDispatcher(
        ToyKnobs(), build, clock, headers=headers, url="http://hook/", transport=hook.transport
    )


async def test_the_vendor_builds_events_and_headers_each_try() -> None:
    """Every try sends the same body; the vendor's headers see each retry and the one
    before it."""
    hook, seen = Hook([500, 502]), list[Retry | None]()
    dispatcher = toy_dispatcher(hook, seen)
    dispatcher.on_change("a")
    attempts = await dispatcher.flush()
    assert [(a.event_id, a.status, a.ok) for a in attempts] == [
        ("ev-a", 500, False),
        ("ev-a", 502, False),
        ("ev-a", 200, True),
    ]
    assert {r.content for r in hook.requests} == {b"<a>"}
    assert [r.headers["x-toy-retry"] for r in hook.requests] == ["0", "1", "2"]
    assert seen[0] is None and seen[1] is not None and seen[2] is not None
    assert (seen[1].previous.status, seen[2].previous.status) == (500, 502)
    assert seen[1].first_at == seen[2].first_at == attempts[0].at


async def test_without_a_url_events_wait_and_the_log_shows_them() -> None:
    """No target: flush sends nothing and the log lists the event as pending."""
    hook, seen = Hook([]), list[Retry | None]()
    dispatcher = toy_dispatcher(hook, seen)
    dispatcher.url = None
    dispatcher.on_change("a")
    assert await dispatcher.flush() == []
    assert dispatcher.log() == {
        "url": None,
        "pending": [{"id": "ev-a"}],
        "dropped": [],
        "attempts": [],
    }
    assert hook.requests == []
