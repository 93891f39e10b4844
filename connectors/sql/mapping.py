"""Database answers turned into syncd's values: errors, accounts, ids, times and states.

`map_error` is the one place a database error becomes syncd's error tree. What it means
depends on when it happened:

    connecting   the server is starting up, shutting down or full;
                 a connect timeout                       RetriableError
                 anything else (refused, wrong user or
                 password, no such database, a SQLite
                 file that cannot be opened)             FatalError (URL masked)
    working      serialization failure, deadlock, lock
                 timeout, SQLite busy/locked, the
                 connection lost (nothing committed)     RetriableError
                 no such table/column, no permission,
                 read-only database                      FatalError
                 a constraint refused the row            IntegrityRefused (the caller decides)
                 a value the column cannot hold          SkipError
    committing   serialization failure, busy (rolled
                 back for sure)                          RetriableError
                 a deferred constraint                   SkipError
                 anything else (the connection dropped
                 with the COMMIT in flight)              OutcomeUnknownError: read back

Emails and phones go through syncd's match-key rules (`syncd.reconcile.keys`, a leaf module
of pure functions): lower-cased emails, E.164 phones when the stored text can be read as one.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, DateTime, Integer, Uuid
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from connectors.base import ExternalAccount
from syncd.errors import (
    FatalError,
    OutcomeUnknownError,
    RemoteError,
    RetriableError,
    SkipError,
)
from syncd.reconcile.keys import email_key, phone_key

INT64 = 2**63
_RETRY_STATES = frozenset({"55P03", "57014", "57P03", "53300", "57P01", "57P02"})
_FATAL_CLASSES = ("28", "3D", "42")  # credentials, no such database, no such table/permission
_SQLITE_BUSY = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})
_SQLITE_FATAL = frozenset({"SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_AUTH", "SQLITE_PERM"})
_SQLITE_SCHEMA = ("no such table", "no such column", "readonly database")


class Phase(enum.Enum):
    """Where in one unit of work a database error happened."""

    CONNECT = "connect"
    WORK = "work"
    COMMIT = "commit"


class IntegrityRefused(Exception):
    """A constraint refused a row (unique key, foreign key, not null); nothing was written.
    Not one of syncd's errors: the connector says what it means (a replay, no such account)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def map_error(
    error: DBAPIError,
    phase: Phase,
    *,
    remote: str,
    shown_url: str,
    password: str | None = None,
    account: str | None = None,
) -> RemoteError | IntegrityRefused:
    """The error that says what to do next about `error`, raised while in `phase`.
    `shown_url` is the URL already masked; `password` is cut out of the database's words."""
    why = reason(error, password=password)
    state = str(getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", "") or "")
    lite = str(getattr(error.orig, "sqlite_errorname", "") or "")
    busy = lite in _SQLITE_BUSY or "database is locked" in why
    rolled_back = state.startswith("40") or state in _RETRY_STATES or busy
    kw: dict[str, Any] = {"remote": remote, "code": state or lite or None, "account": account}
    if phase is Phase.CONNECT:
        if rolled_back or "timeout expired" in why:
            return RetriableError(f"cannot connect to {shown_url} yet ({why})", **kw)
        if shown_url.startswith("sqlite"):
            hint = "check the connector's url: the file's folder must exist and be readable"
        else:
            hint = (
                "check the connector's url (host, port, database, user, password) and that "
                "the server is running"
            )
        return FatalError(f"cannot connect to {shown_url} ({why}): {hint}", **kw)
    if phase is Phase.COMMIT:
        if rolled_back:
            return RetriableError(f"the commit was refused and rolled back ({why})", **kw)
        if isinstance(error, IntegrityError):
            return SkipError(f"the database refused the write at commit ({why})", **kw)
        return OutcomeUnknownError(
            f"the connection failed while committing ({why}): the write may have landed", **kw
        )
    if isinstance(error, IntegrityError):
        return IntegrityRefused(why)
    if rolled_back or error.connection_invalidated or state.startswith("08"):
        return RetriableError(f"database busy or connection lost ({why})", **kw)
    if (
        state.startswith(_FATAL_CLASSES)
        or lite in _SQLITE_FATAL
        or any(text in why for text in _SQLITE_SCHEMA)
    ):
        return FatalError(
            f"{why}: the database no longer matches the connector's config or refuses "
            "syncd's user: check the tables, columns and grants",
            **kw,
        )
    if isinstance(error, DataError):
        return SkipError(f"the database refused a value ({why})", **kw)
    return RetriableError(f"database error ({why})", **kw)


def reason(error: BaseException, *, password: str | None = None) -> str:
    """The database's own words, one line, without driver noise or the password."""
    inner = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    text = re.sub(r"\s+", " ", lines[0]) if lines else type(inner).__name__
    text = re.sub(r"^.*failed: ", "", text)
    text = re.sub(r"^(FATAL|ERROR):\s+", "", text).strip()
    if password:
        text = text.replace(password, "***")
    return text[:1].lower() + text[1:]


# -- values --------------------------------------------------------------------------------------


def coerce_id(column: Column[Any], value: str) -> Any | None:
    """`value` as the id column holds it, or None when no row can have that id (so a
    PostgreSQL integer or uuid column never sees text it would refuse)."""
    if isinstance(column.type, Integer):
        if not re.fullmatch(r"-?\d{1,19}", value.strip()):
            return None
        number = int(value)
        return number if -INT64 <= number < INT64 else None
    if isinstance(column.type, Uuid):
        try:
            return uuid.UUID(value)
        except ValueError:
            return None
    return value


def to_account(row: Mapping[Any, Any]) -> ExternalAccount:
    """A row labelled id, balance, email, phone, name, version as syncd sees an account."""
    email = row.get("email")
    phone = row.get("phone")
    name = row.get("name")
    version = row.get("version")
    return ExternalAccount(
        id=str(row["id"]),
        balance=int(row.get("balance") or 0),
        email=email_key(email) if isinstance(email, str) else None,
        phone=phone_key(str(phone)) if phone is not None else None,
        name=name.strip() or None if isinstance(name, str) else None,
        version=None if version is None else time_text(version),
    )


def state_of(account_id: object, updated_at: object, version: object, points: object) -> str:
    """An account row's state in column mode: it changes whenever the row changes (its
    version, else its points, with its updated_at). Also the change feed's event id."""
    last = version if version is not None else f"p{points}"
    return f"{account_id}@{time_text(updated_at)}@{last}"


def time_text(value: object) -> str:
    """A value as text; times in ISO 8601."""
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else str(value)


def db_time(column: Column[Any] | None, moment: datetime) -> Any:
    """`moment` as the column stores times: aware UTC for a timezone column, naive UTC for a
    plain timestamp, ISO text for a text column."""
    utc = moment.astimezone(UTC)
    if column is None or isinstance(column.type, DateTime):
        zoned = column is not None and bool(getattr(column.type, "timezone", False))
        return utc if zoned else utc.replace(tzinfo=None)
    return utc.replace(tzinfo=None).isoformat(sep=" ")


# -- change cursors ------------------------------------------------------------------------------


def time_cursor(mark: object) -> str:
    """A watermark (the newest change time seen, as the database holds it) as a cursor."""
    if isinstance(mark, datetime):
        return f"t:{mark.isoformat()}"
    return f"s:{'' if mark is None else mark}"


def parse_time_cursor(cursor: str) -> datetime | str | None:
    """The watermark a `time_cursor` holds; ValueError if it is not one."""
    kind, sep, body = cursor.partition(":")
    if not sep or kind not in ("t", "s"):
        raise ValueError(f"not a sql change cursor for changes = 'updated_at': {cursor!r}")
    if kind == "s":
        return body or None
    return datetime.fromisoformat(body)


def shifted(mark: datetime | str, by: timedelta) -> datetime | str:
    """The watermark moved by `by` (ISO text too, when it reads as a time)."""
    if isinstance(mark, datetime):
        return mark + by
    try:
        moment = datetime.fromisoformat(mark)
    except ValueError:
        return mark
    return (moment + by).isoformat(sep=" ")


def snapshot_cursor(generation: int) -> str:
    return f"g:{generation}"


def parse_snapshot_cursor(cursor: str) -> int:
    """The snapshot generation a cursor names; ValueError if it is not one."""
    kind, sep, body = cursor.partition(":")
    if not sep or kind != "g" or not body.isdigit():
        raise ValueError(f"not a sql change cursor for changes = 'snapshot': {cursor!r}")
    return int(body)
