"""Wire helpers every emulator needs, whatever its vendor: the clock type, JSON bodies, times.

Clock                    a `() -> datetime` the emulator reads "now" from (tests pass a
                         manual one; the default is `syncd.clock.utcnow`)
utc_millis(moment)       "2025-03-01T12:00:00.000Z", as both Wix and Square write times
                         with milliseconds
read_json_object(...)    the request body as a JSON object, refused in the vendor's words
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import ClientDisconnect, Request

from syncd.sandbox.errors import ApiError

Clock = Callable[[], datetime]
Json = dict[str, Any]


def utc_millis(moment: datetime) -> str:
    """ISO-8601 / RFC 3339 in UTC with milliseconds and Z."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


async def read_json_object(
    request: Request,
    *,
    not_json: Callable[[], ApiError],
    not_object: Callable[[], ApiError],
) -> Json:
    """The body as a JSON object; an empty body is `{}`; otherwise the vendor's 400 (also
    when the client went away before sending it all: nobody reads that answer)."""
    try:
        raw = await request.body()
    except ClientDisconnect:
        raise not_json() from None
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise not_json() from None
    if not isinstance(body, dict):
        raise not_object()
    return body
