"""Logs are events: a stable event name plus fields, as JSON in a container, plain on a terminal.

    log = get_logger(__name__)
    event(log, "wix.retry", attempt=2, wait=1.5, error="connection refused")

Never pass a secret or a whole payload with personal data as a field.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

_FIELDS = "syncd_fields"


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def event(logger: logging.Logger, name: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event `name` with its fields."""
    logger.log(level, name, extra={_FIELDS: fields})


class _PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, _FIELDS, {})
        tail = " ".join(f"{k}={v}" for k, v in fields.items())
        stamp = self.formatTime(record, "%H:%M:%S")
        line = f"{stamp} {record.levelname.lower():7} {record.getMessage()} {tail}".rstrip()
        if record.exc_info:  # a library's error with its traceback: keep it, indented
            line += "\n" + self.formatException(record.exc_info)
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "logger": record.name,
            **getattr(record, _FIELDS, {}),
        }
        if record.exc_info:
            payload["traceback"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure(*, json_lines: bool | None = None, level: int = logging.INFO) -> None:
    """Send syncd's events to stderr: JSON when not on a terminal (or when asked), else plain."""
    use_json = (not sys.stderr.isatty()) if json_lines is None else json_lines
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if use_json else _PlainFormatter())
    root = logging.getLogger("syncd")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # Libraries log through the same handler, and only what needs a person's attention.
    for name in ("apscheduler", "uvicorn", "alembic"):
        library = logging.getLogger(name)
        library.handlers[:] = [handler]
        library.setLevel(logging.WARNING)
        library.propagate = False
