"""SQLite writers of one process take turns (the intake's thread and the event loop): each
waits for the transaction ahead of it, and a transaction that ends any way at all — commit,
rollback, a failed BEGIN, a dropped connection — lets the next one in at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from syncd.store.db import make_engine, upgrade

SOON = 2.0  # well under the 5 s a writer waits for a turn that is never given back


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'syncd.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def write_in_thread(engine: Engine) -> float:
    """Seconds another thread took to run one write transaction."""
    took: list[float] = []

    def write() -> None:
        started = time.monotonic()
        with engine.begin() as connection:
            connection.execute(text("UPDATE cursors SET value = value WHERE 0"))
        took.append(time.monotonic() - started)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(timeout=30)
    assert took, "the other writer never finished"
    return took[0]


def count_rows(engine: Engine) -> int:
    with engine.begin() as connection:
        return int(connection.execute(text("SELECT count(*) FROM cursors")).scalar_one())


def test_a_writer_waits_for_the_transaction_ahead_and_loses_nothing(
    sqlite_store: Engine,
) -> None:
    """Threads writing read-then-write transactions at once all get through, none lost."""

    def add(name: str) -> Callable[[], None]:
        def run() -> None:
            for number in range(20):
                with sqlite_store.begin() as connection:
                    connection.execute(
                        text("INSERT INTO cursors (name, value, updated_at) VALUES (:n, '', '')"),
                        {"n": f"{name}-{number}"},
                    )

        return run

    threads = [threading.Thread(target=add(f"t{i}")) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert count_rows(sqlite_store) == 80


def test_a_rolled_back_transaction_lets_the_next_writer_in(sqlite_store: Engine) -> None:
    """An error inside a transaction rolls it back and gives the turn back."""
    with pytest.raises(RuntimeError), sqlite_store.begin():
        raise RuntimeError("the work failed")
    assert write_in_thread(sqlite_store) < SOON


def test_a_dropped_connection_lets_the_next_writer_in(sqlite_store: Engine) -> None:
    """A connection invalidated in the middle of its transaction gives the turn back."""
    connection = sqlite_store.connect()
    connection.begin()
    connection.execute(text("UPDATE cursors SET value = value WHERE 0"))
    connection.invalidate()
    connection.close()
    assert write_in_thread(sqlite_store) < SOON


def test_a_waiting_writer_goes_as_soon_as_the_one_ahead_commits(sqlite_store: Engine) -> None:
    """While one thread holds a transaction the other waits; it gets in after the commit
    (not only after its lock wait timed out)."""
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with sqlite_store.begin() as connection:
            connection.execute(text("UPDATE cursors SET value = value WHERE 0"))
            holding.set()
            release.wait(timeout=10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(timeout=10)
    threading.Timer(0.2, release.set).start()
    took = write_in_thread(sqlite_store)
    holder.join(timeout=10)
    assert 0.1 < took < SOON
