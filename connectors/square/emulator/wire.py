"""Wire helpers of the Square emulator: timestamps, ids, cursors and request-field readers."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from connectors.square.emulator.errors import SquareApiError, bad_request
from syncd.sandbox import ids
from syncd.sandbox.wire import Clock as Clock  # re-exported for the model modules
from syncd.sandbox.wire import Json as Json

E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_BASE32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VERSION_4 = (0xF000 << 64) | (0xC000 << 48)  # the bits `uuid.UUID(version=4)` sets


def rfc3339(moment: datetime, precision: str = "s") -> str:
    """RFC 3339 in UTC with Z: whole seconds ("s") or milliseconds ("ms")."""
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{utc.microsecond // 1000:03d}Z" if precision == "ms" else f"{text}Z"


def truncate(moment: datetime, precision: str) -> datetime:
    """`moment` cut to the precision it is shown with, so filters agree with what is shown."""
    micro = moment.microsecond // 1000 * 1000 if precision == "ms" else 0
    return moment.astimezone(UTC).replace(microsecond=micro)


def parse_time(value: Any, field: str) -> datetime:
    """An RFC 3339 request value; 400 INVALID_TIME otherwise."""
    if not isinstance(value, str):
        raise bad_request("Expected an RFC 3339 timestamp.", code="INVALID_TIME", field=field)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise bad_request(
            f"Invalid timestamp `{value}`.", code="INVALID_TIME", field=field
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


class IdFactory(ids.IdFactory):
    """Seeded ids (`syncd.sandbox.ids`), plus Square-style base-32 ones; both drawn faster than
    the shared factory draws the same ones (seeding makes four an account)."""

    def uuid(self) -> str:
        """The id `str(uuid.UUID(int=<128 random bits>, version=4))` makes, without the object."""
        bits = self._rng.getrandbits(128) & ~_VERSION_4 | (4 << 76) | (0x8000 << 48)
        text = f"{bits:032x}"
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    def square_id(self, length: int = 26) -> str:
        """An uppercase base-32 id like Square's customer and location ids.

        The same characters `self.token(_BASE32, length)` draws (`random.choice` of 32 takes
        6 random bits, drawing again while they exceed 31), several times faster: seeding
        makes one per customer.
        """
        draw = self._rng.getrandbits
        chars: list[str] = []
        while len(chars) < length:
            bits = draw(6)
            if bits < len(_BASE32):
                chars.append(_BASE32[bits])
        return "".join(chars)


def fingerprint(value: Any) -> str:
    """A stable digest of a JSON value (key order does not matter)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def encode_cursor(state: Json) -> str:
    """An opaque cursor carrying `state`."""
    raw = json.dumps(state, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: Any, query_print: str) -> Json:
    """The state inside a cursor made for the same query; 400 INVALID_CURSOR otherwise."""
    if not isinstance(cursor, str) or not cursor:
        raise bad_request("Invalid cursor.", code="INVALID_CURSOR", field="cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise bad_request("Invalid cursor.", code="INVALID_CURSOR", field="cursor") from None
    if not isinstance(state, dict) or state.get("q") != query_print:
        raise bad_request(
            "The cursor was made for a different query.", code="INVALID_CURSOR", field="cursor"
        )
    return state


# -- request fields ------------------------------------------------------------------------------


def obj(value: Any, field: str) -> Json:
    """An optional object field (absent = {})."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"Expected an object at `{field}`.", code="EXPECTED_OBJECT", field=field)
    return value


def text(
    value: Any, field: str, *, required: bool = False, max_length: int | None = None
) -> str | None:
    """An optional (or required) string field with an optional length limit."""
    if value is None:
        if required:
            raise bad_request(
                f"Field `{field}` is required.", code="MISSING_REQUIRED_PARAMETER", field=field
            )
        return None
    if not isinstance(value, str):
        raise bad_request(f"Expected a string at `{field}`.", code="EXPECTED_STRING", field=field)
    if required and not value:
        raise bad_request(
            f"Field `{field}` must not be empty.", code="VALUE_TOO_SHORT", field=field
        )
    if max_length is not None and len(value) > max_length:
        raise bad_request(
            f"Field `{field}` must be at most {max_length} characters.",
            code="VALUE_TOO_LONG",
            field=field,
        )
    return value


def integer(value: Any, field: str, *, required: bool = False) -> int | None:
    """An optional (or required) integer field."""
    if value is None:
        if required:
            raise bad_request(
                f"Field `{field}` is required.", code="MISSING_REQUIRED_PARAMETER", field=field
            )
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(
            f"Expected an integer at `{field}`.", code="EXPECTED_INTEGER", field=field
        )
    return value


def limit(value: Any, *, default: int, maximum: int) -> int:
    """A page size in 1..maximum (VALUE_TOO_LOW / VALUE_TOO_HIGH otherwise)."""
    size = integer(value, "limit")
    if size is None:
        return default
    if size < 1:
        raise bad_request("`limit` must be at least 1.", code="VALUE_TOO_LOW", field="limit")
    if size > maximum:
        raise bad_request(
            f"`limit` must be at most {maximum}.", code="VALUE_TOO_HIGH", field="limit"
        )
    return size


def string_list(value: Any, field: str, *, maximum: int) -> list[str]:
    """A list of strings of at most `maximum` items."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(
            f"Expected a list of strings at `{field}`.", code="EXPECTED_ARRAY", field=field
        )
    if len(value) > maximum:
        raise bad_request(
            f"`{field}` holds at most {maximum} items.", code="VALUE_TOO_HIGH", field=field
        )
    return list(value)


def e164(value: Any, field: str) -> str:
    """A required phone number in E.164; 400 INVALID_PHONE_NUMBER otherwise."""
    phone = text(value, field, required=True) or ""
    if not E164.match(phone):
        raise bad_request(
            f"Invalid phone number `{phone}`: use E.164, e.g. +14155551234.",
            code="INVALID_PHONE_NUMBER",
            field=field,
        )
    return phone


def normal_phone(phone: str | None) -> str | None:
    """A stored phone as E.164 for matching: digits with "+", 10 digits taken as US/Canada."""
    if not phone:
        return None
    digits = re.sub(r"\D", "", phone)
    if not digits:
        return None
    if phone.strip().startswith("+"):
        return f"+{digits}"
    return f"+1{digits}" if len(digits) == 10 else f"+{digits}"


def refuse(status: int, code: str, detail: str, field: str | None = None) -> SquareApiError:
    """A refusal with a status and code chosen by a knob."""
    return SquareApiError(status, code, detail, field=field)
