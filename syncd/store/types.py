"""Column types that make SQLite and PostgreSQL round-trip the same Python values."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import DateTime, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

E = TypeVar("E", bound=StrEnum)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime: stored as UTC, always returned aware.

    PostgreSQL keeps the offset (`timestamptz`); SQLite keeps none, so the value is stored as
    naive UTC and given back its `UTC` tzinfo on the way out. Naive values are refused: a
    naive datetime in syncd is a bug (use `syncd.clock.utcnow`).
    """

    impl = DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC; SQLite gets the naive UTC wall time."""
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: store only timezone-aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Give back an aware UTC datetime whatever the backend returned."""
        if value is None:
            return None
        if value.utcoffset() is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class StrEnumType(TypeDecorator[E], Generic[E]):
    """A `StrEnum` stored as its plain string value in a VARCHAR (no native DB enum type).

    Unknown values are refused on write; rows read back come out as enum members.
    """

    impl = String
    cache_ok = True

    def __init__(self, enum_class: type[E], length: int = 16) -> None:
        super().__init__(length=length)
        self.enum_class = enum_class
        self.length = length

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        """Store the value of a member (or of a string naming one)."""
        if value is None:
            return None
        return str(self.enum_class(value).value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        """Turn the stored string back into the enum member."""
        return None if value is None else self.enum_class(value)
