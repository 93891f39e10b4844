"""Job turns across replicas, on SQLite and PostgreSQL: one run per turn, whoever asks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from syncd.runtime.turns import take_turn
from syncd.store.db import make_engine

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOLD = timedelta(seconds=24)


def test_a_turn_is_taken_once_until_it_expires(store: Engine) -> None:
    """The first replica to ask runs the job; others skip until the hold has passed; jobs
    are independent of each other."""
    assert take_turn(store, "poll.wix", "a:1", now=T0, hold=HOLD)
    assert not take_turn(store, "poll.wix", "b:2", now=T0 + timedelta(seconds=1), hold=HOLD)
    assert not take_turn(store, "poll.wix", "a:1", now=T0 + timedelta(seconds=23), hold=HOLD)
    assert take_turn(store, "poll.shop", "b:2", now=T0, hold=HOLD)
    assert take_turn(store, "poll.wix", "b:2", now=T0 + HOLD, hold=HOLD)


def test_racing_replicas_get_one_turn(store: Engine, store_url: str) -> None:
    """Eight replicas asking at the same moment, each with its own connection pool: exactly
    one of them runs the job."""
    engines = [make_engine(store_url) for _ in range(8)]
    take_turn(engines[0], "drift", "warm-up", now=T0 - HOLD * 2, hold=HOLD)  # the row exists
    start = threading.Barrier(len(engines))
    won: list[bool] = []

    def ask(number: int) -> None:
        start.wait()
        won.append(take_turn(engines[number], "drift", f"r:{number}", now=T0, hold=HOLD))

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.dispose()
    assert sorted(won) == [False] * 7 + [True]
