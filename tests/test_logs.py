"""Log lines: events with fields, plain or JSON, and a library's traceback kept."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from syncd.logs import configure, event, get_logger


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    for name in ("syncd", "apscheduler", "uvicorn", "alembic"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


@pytest.mark.parametrize("json_lines", [False, True])
def test_events_and_library_tracebacks(
    json_lines: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """An event is one line with its fields; a library's logged exception keeps its traceback
    (plain: below the line; JSON: a `traceback` field of the one line)."""
    configure(json_lines=json_lines)
    event(get_logger("syncd.test"), "sync.failed", link=7)
    try:
        raise RuntimeError("job blew up")
    except RuntimeError:
        logging.getLogger("apscheduler").exception("Job raised")
    lines = capsys.readouterr().err.splitlines()
    if json_lines:
        first, second = (json.loads(line) for line in lines)
        assert (first["event"], first["link"]) == ("sync.failed", 7)
        assert "RuntimeError: job blew up" in second["traceback"]
    else:
        assert lines[0].endswith("sync.failed link=7")
        assert "Job raised" in lines[1] and "RuntimeError: job blew up" in lines[-1]
