"""Several workers (threads here, replicas in production) share one store safely."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlmodel import select

from syncd.store.db import make_engine, session_scope, upgrade
from syncd.store.models import Link


def _run_together(count: int, work: Callable[[], None]) -> list[BaseException]:
    """Start `count` threads on `work` at once; return what they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run() -> None:
        start.wait()
        try:
            work()
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return errors


def test_concurrent_upgrades_take_turns(database_url: str) -> None:
    """Replicas starting together on an empty database all upgrade without error."""

    def start_replica() -> None:
        engine = make_engine(database_url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()

    assert _run_together(3, start_replica) == []
    engine = make_engine(database_url)
    try:
        assert "links" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_read_for_update_then_write_loses_no_update(store: Engine) -> None:
    """Read-modify-write under `with_for_update()` is serialised on both backends."""
    with session_scope(store) as session:
        session.add(Link(connector="shop", wix_account_id="w1", external_id="e1", wix_base=0))

    def add_one_point_five_times() -> None:
        for _ in range(5):
            with session_scope(store) as session:
                link = session.exec(select(Link).with_for_update()).one()
                time.sleep(0.005)  # let the other workers try to interleave
                link.wix_base = (link.wix_base or 0) + 1
                session.add(link)

    assert _run_together(4, add_one_point_five_times) == []
    with session_scope(store) as session:
        assert session.exec(select(Link)).one().wix_base == 20
