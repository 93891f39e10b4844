"""The generic fault tools: request faults, the sliding-window limiter, delivery faults, knobs."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from syncd.sandbox import knobs
from syncd.sandbox.faults import (
    AfterCommit,
    DeliveryFaults,
    RequestFaults,
    SlidingWindowLimiter,
    retry_after_header,
)


class Ticker:
    """A monotonic clock under test control."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_request_faults_are_off_by_default() -> None:
    """A default RequestFaults never delays, fails or hangs."""
    faults = RequestFaults()
    for _ in range(100):
        assert faults.roll_before().fail is False
        assert faults.roll_after_commit() is AfterCommit.ANSWER
    assert faults.roll_before().delay_seconds == 0


def test_request_faults_at_rate_one_always_fire() -> None:
    """Rates of 1 fail every request before, or after, applying it."""
    assert RequestFaults(error_rate=1).roll_before().fail
    assert RequestFaults(fail_after_commit_rate=1).roll_after_commit() is AfterCommit.FAIL
    assert RequestFaults(timeout_after_commit_rate=1).roll_after_commit() is AfterCommit.HANG
    assert RequestFaults(latency_ms=250).roll_before().delay_seconds == 0.25


def test_request_faults_replay_with_the_same_seed() -> None:
    """Two fault sets seeded alike inject the same faults in the same order."""
    one = RequestFaults(error_rate=0.5, rng=random.Random(7))
    two = RequestFaults(error_rate=0.5, rng=random.Random(7))
    rolls = [one.roll_before().fail for _ in range(50)]
    assert rolls == [two.roll_before().fail for _ in range(50)]
    assert 5 < sum(rolls) < 45


def test_limiter_allows_the_budget_then_says_how_long_to_wait() -> None:
    """The limiter admits N per 60 s window and reports when the oldest slot frees."""
    tick = Ticker()
    limiter = SlidingWindowLimiter(3, clock=tick)
    assert [limiter.acquire("site") for _ in range(3)] == [None, None, None]
    assert limiter.acquire("site") == pytest.approx(60)
    tick.now += 45
    assert limiter.acquire("site") == pytest.approx(15)
    tick.now += 15
    assert limiter.acquire("site") is None


def test_limiter_counts_each_key_apart_and_zero_turns_it_off() -> None:
    """Keys have their own windows; a limit of 0 admits everything."""
    limiter = SlidingWindowLimiter(1, clock=Ticker())
    assert limiter.acquire("a") is None
    assert limiter.acquire("b") is None
    assert limiter.acquire("a") is not None
    off = SlidingWindowLimiter(0, clock=Ticker())
    assert all(off.acquire("a") is None for _ in range(1000))


def test_retry_after_header_rounds_up_to_whole_seconds() -> None:
    """Retry-After is an integer number of seconds, never 0."""
    assert retry_after_header(14.2) == "15"
    assert retry_after_header(0.0) == "1"


def test_delivery_faults_drop_duplicate_and_shuffle() -> None:
    """shape() drops, repeats and shuffles within the window, seeded."""
    events = list(range(20))
    assert DeliveryFaults().shape(events) == (events, [])
    sent, dropped = DeliveryFaults(drop_rate=1).shape(events)
    assert (sent, dropped) == ([], events)
    sent, _ = DeliveryFaults(duplicate_rate=1).shape(events)
    assert sent == [e for e in events for _ in (0, 1)]
    sent, _ = DeliveryFaults(reorder_window=5, rng=random.Random(3)).shape(events)
    assert sent != events
    assert [sorted(sent[i : i + 5]) for i in range(0, 20, 5)] == [
        events[i : i + 5] for i in range(0, 20, 5)
    ]


@dataclass
class Inner:
    """Nested knobs for the patch tests."""

    rate: float = 0.0
    rng: random.Random = field(default_factory=random.Random)


@dataclass
class Outer:
    """Top-level knobs for the patch tests."""

    limit: int = 200
    mode: str | None = "computed"
    gaps: tuple[float, ...] = (1.0,)
    inner: Inner = field(default_factory=Inner)


def test_knob_patch_checks_types_and_applies_nested_changes() -> None:
    """patch() applies nested partial changes and dump() shows them."""
    target = Outer()
    knobs.patch(target, {"limit": 5, "mode": None, "gaps": [0, 0.5], "inner": {"rate": 1}})
    assert knobs.dump(target) == {
        "limit": 5,
        "mode": None,
        "gaps": [0.0, 0.5],
        "inner": {"rate": 1.0},
    }


@pytest.mark.parametrize(
    "change",
    [{"nope": 1}, {"limit": "5"}, {"limit": True}, {"inner": {"rng": 1}}, {"gaps": 3}],
)
def test_knob_patch_refuses_bad_changes_and_changes_nothing(change: dict[str, object]) -> None:
    """An unknown knob or a wrong type raises KnobError and leaves every knob as it was."""
    target = Outer()
    with pytest.raises(knobs.KnobError):
        knobs.patch(target, {"limit": 1, **change})
    assert target.limit == 200
