"""Wire helpers shared by the Wix model and routes: dates, ids and integer fields."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from syncd.sandbox.wix.errors import invalid

Clock = Callable[[], datetime]


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and Z, as Wix writes dates."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class IdFactory:
    """GUIDs from a seeded generator, so a seeded emulator hands out the same ids every run."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def reseed(self, seed: int) -> None:
        """Start the sequence again from `seed`."""
        self._rng.seed(seed)

    def __call__(self) -> str:
        """A new random (version 4) GUID."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))


def as_int(value: Any, field: str) -> int:
    """An integer field as protobuf JSON accepts it: a number without fraction or a digit string."""
    if isinstance(value, bool):
        raise invalid(field, "must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise invalid(field, "must be an integer")


def optional_str(value: Any, field: str) -> str | None:
    """A string field that may be absent or null."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    return value
