"""Progress of long work: a bar on a terminal, an event every few seconds elsewhere."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from syncd.logs import event, get_logger

log = get_logger(__name__)
BAR_WIDTH = 30
LOG_EVERY_SECONDS = 5.0


class Progress:
    """Counts `done` out of `total` and shows it without flooding a log."""

    def __init__(self, what: str, total: int, *, out: TextIO | None = None) -> None:
        self.what = what
        self.total = max(total, 0)
        self.done = 0
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self._last = 0.0

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if self.tty:
            if now - self._last >= 0.1 or self.done >= self.total:
                self._last = now
                filled = BAR_WIDTH * self.done // self.total if self.total else BAR_WIDTH
                bar = "#" * filled + "." * (BAR_WIDTH - filled)
                self.out.write(f"\r{self.what} [{bar}] {self.done}/{self.total}")
                self.out.flush()
        elif now - self._last >= LOG_EVERY_SECONDS:
            self._last = now
            event(log, "progress", what=self.what, done=self.done, total=self.total)

    def close(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()
