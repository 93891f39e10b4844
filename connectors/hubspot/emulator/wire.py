"""Wire helpers of the HubSpot emulator: numeric ids, timestamps, query and body readers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from connectors.hubspot.emulator.errors import validation_error
from syncd.sandbox import ids
from syncd.sandbox.wire import Clock as Clock  # re-exported for the model modules
from syncd.sandbox.wire import Json as Json
from syncd.sandbox.wire import read_json_object
from syncd.sandbox.wire import utc_millis as utc_millis

FIRST_OBJECT_ID = 1001
MAX_ID_STEP = 20  # ids rise by a seeded step of 1..20: dense enough to read, never contiguous


class IdFactory(ids.IdFactory):
    """Seeded ids (`syncd.sandbox.ids`), plus HubSpot's rising numeric object ids."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self._last = FIRST_OBJECT_ID

    def reseed(self, seed: int) -> None:
        """Start the sequence (and the object ids) again from `seed`."""
        super().reseed(seed)
        self._last = FIRST_OBJECT_ID

    def object_id(self) -> str:
        """The next object id: a numeric string, always greater than the one before."""
        self._last += self._rng.randint(1, MAX_ID_STEP)
        return str(self._last)

    def number(self, digits: int) -> int:
        """A random positive integer of `digits` digits (event and subscription ids)."""
        return self._rng.randint(10 ** (digits - 1), 10**digits - 1)


def epoch_millis(moment: datetime) -> int:
    """Milliseconds since the epoch, as webhook `occurredAt` and filter values use."""
    return int(moment.astimezone(UTC).timestamp() * 1000)


def parse_moment(value: str) -> datetime | None:
    """A datetime property value or filter value: epoch milliseconds or ISO 8601; None if
    it is neither."""
    text = value.strip()
    if text.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# -- query parameters ----------------------------------------------------------------------------


def query_names(request: Request, name: str) -> list[str]:
    """A list parameter, repeated (`?properties=a&properties=b`, as the SDK sends) or
    comma-separated (`?properties=a,b`), in order, without repeats."""
    names: list[str] = []
    for value in request.query_params.getlist(name):
        for part in value.split(","):
            part = part.strip()
            if part and part not in names:
                names.append(part)
    return names


def query_flag(request: Request, name: str) -> bool:
    """A boolean parameter (`true`/`false`, absent = false); 400 otherwise."""
    value = request.query_params.get(name, "false").lower()
    if value not in ("true", "false"):
        raise validation_error(f"Invalid value '{value}' for query parameter '{name}'.")
    return value == "true"


def query_limit(request: Request, *, default: int, maximum: int) -> int:
    """The `limit` parameter in 1..maximum."""
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    return page_limit(int(raw) if raw.strip().isdigit() else raw, default=default, maximum=maximum)


# -- request bodies ------------------------------------------------------------------------------


async def read_json(request: Request) -> Json:
    """The request body as a JSON object; an empty body is `{}`; anything else is a 400."""
    return await read_json_object(
        request,
        not_json=lambda: validation_error("Invalid input JSON on line 1: the body is not JSON."),
        not_object=lambda: validation_error("Invalid input JSON: expected an object."),
    )


def page_limit(value: Any, *, default: int, maximum: int) -> int:
    """A page size in 1..maximum (a JSON or query value)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise validation_error(f"limit must be a positive integer, got {value!r}.")
    if value > maximum:
        raise validation_error(f"limit must be at most {maximum}, got {value}.")
    return value


def names(value: Any, field: str) -> list[str]:
    """A list of property names in a body (absent = [])."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise validation_error(f"Invalid input JSON: `{field}` must be a list of strings.")
    return list(dict.fromkeys(value))


def obj(value: Any, field: str) -> Json:
    """An object field (absent = {})."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise validation_error(f"Invalid input JSON: `{field}` must be an object.")
    return value


def inputs(body: Json, *, maximum: int = 100) -> list[Json]:
    """A batch's `inputs`: a list of 1..maximum objects."""
    value = body.get("inputs")
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise validation_error("Invalid input JSON: `inputs` must be a list of objects.")
    if len(value) > maximum:
        raise validation_error(f"Batch input is limited to {maximum} inputs, got {len(value)}.")
    return value


def text(value: Any, field: str) -> str:
    """A required non-empty string field."""
    if not isinstance(value, str) or not value:
        raise validation_error(f"Invalid input JSON: `{field}` must be a non-empty string.")
    return value
