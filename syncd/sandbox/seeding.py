"""Shared by the emulators' seeding helpers."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Seeding thousands of accounts makes millions of objects and no garbage cycles: with the
    cyclic collector paused it does not rescan the growing model over and over."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
