"""Wire helpers shared by the Wix model and routes: dates, ids, integer fields, JSON copies.

Ids come from a seeded `IdFactory` (the shared `syncd.sandbox.ids` one, drawing the same GUIDs
faster); call one for a GUID.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, TypeVar, cast

from syncd.sandbox import ids
from syncd.sandbox.wire import Clock as Clock
from syncd.sandbox.wire import utc_millis
from syncd.sandbox.wix.errors import invalid

J = TypeVar("J")
_VERSION_4 = (0xF000 << 64) | (0xC000 << 48)  # the bits `uuid.UUID(version=4)` sets


class IdFactory(ids.IdFactory):
    """Seeded ids (`syncd.sandbox.ids`), the GUIDs drawn faster: seeding makes five an account."""

    def uuid(self) -> str:
        """The id `str(uuid.UUID(int=<128 random bits>, version=4))` makes, without the object."""
        bits = self._rng.getrandbits(128) & ~_VERSION_4 | (4 << 76) | (0x8000 << 48)
        text = f"{bits:032x}"
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@functools.lru_cache(maxsize=1024)
def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and Z, as Wix writes dates (remembered: an account
    shows the same few moments again and again)."""
    return utc_millis(moment)


def json_copy(value: J) -> J:
    """A deep copy of a JSON value (dicts, lists, scalars), as `copy.deepcopy` makes one but
    several times faster."""
    copied: Any = value
    if isinstance(value, dict):
        copied = {key: json_copy(item) for key, item in value.items()}
    elif isinstance(value, list):
        copied = [json_copy(item) for item in value]
    return cast(J, copied)


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
