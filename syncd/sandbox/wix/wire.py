"""Wire helpers shared by the Wix model and routes: dates, ids and integer fields.

Ids come from the shared seeded `IdFactory` (`syncd.sandbox.ids`); call one for a GUID.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from syncd.sandbox.ids import IdFactory as IdFactory  # re-exported for the model modules
from syncd.sandbox.wire import Clock as Clock
from syncd.sandbox.wire import utc_millis
from syncd.sandbox.wix.errors import invalid


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and Z, as Wix writes dates."""
    return utc_millis(moment)


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
