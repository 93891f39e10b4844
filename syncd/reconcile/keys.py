"""Match keys as syncd compares them: emails lower-cased, phones in E.164."""

from __future__ import annotations

import re

_NOT_DIGITS = re.compile(r"\D")


def email_key(value: str | None) -> str | None:
    """The email as a match key: trimmed and lower-cased; None when it is not an email."""
    if not value:
        return None
    email = value.strip().lower()
    return email if "@" in email else None


def phone_key(value: str | None, default_country_code: str = "1") -> str | None:
    """The phone in E.164 (`+14155550123`), or None when it cannot be made one.

    A number written with `+` keeps its country code; a national number of ten digits takes
    `default_country_code` (North America's by default); `1` followed by ten digits is read as
    North American.
    """
    if not value:
        return None
    digits = _NOT_DIGITS.sub("", value)
    if value.strip().startswith("+"):
        return f"+{digits}" if 8 <= len(digits) <= 15 else None
    if len(digits) == 10:
        return f"+{default_country_code}{digits}"
    if len(digits) == 11 and digits.startswith("1"):
        return f"+{digits}"
    return None
