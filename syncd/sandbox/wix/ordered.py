"""The site's records kept in the API's default order, so a default page is found by bisecting.

Accounts, contacts and transactions are listed oldest first: `createdDate` as shown (to the
millisecond), then `id`. A `CreationOrder` keeps one kind of record sorted that way as records
are added (at the end, nearly always), and `Records` is what the paging functions of
`syncd.sandbox.wix.query` read: a page of a plain query (no filter, no search, the default sort)
is a slice found with a binary search, and any other query runs the general path over
`Records.candidates(filter)` — every record, or the few a filter can match when the model
keeps an index for it (an account's transactions).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from syncd.sandbox.wix.filters import (
    ALIASES,
    ISO,
    Doc,
    harmless,
    is_operators,
    scalar,
    selects_everything,
)

T = TypeVar("T")
Key = tuple[str, str]  # (createdDate as shown, id)
_SHOWN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


class CreationOrder(Generic[T]):
    """Records sorted by (createdDate as shown, id); `key` gives that pair for a record."""

    def __init__(self, key: Callable[[T], Key]) -> None:
        self.key = key
        self._items: list[T] = []
        self._last: Key | None = None  # the last record's key

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: T) -> None:
        """Insert `item` in order: appended when it sorts last, as a new record nearly does."""
        items, key_of = self._items, self.key
        key = key_of(item)
        if self._last is None or self._last <= key:
            items.append(item)
            self._last = key
            return
        # Records made in the same millisecond sort by id: gallop back from the end to
        # find a short range to bisect.
        hi, step = len(items) - 1, 1
        while hi - step >= 0 and key_of(items[hi - step]) > key:
            hi -= step
            step *= 2
        lo = max(hi - step, 0)
        items.insert(bisect.bisect_right(items, key, lo, hi, key=key_of), item)

    def clear(self) -> None:
        """No records."""
        self._items.clear()
        self._last = None

    def key_at(self, position: int) -> Key:
        """The sort key of the record at `position`."""
        return self.key(self._items[position])

    def position(self, key: Key, *, after: bool) -> int:
        """Where the records sorting after `key` start (`after`), or those at or after it."""
        find = bisect.bisect_right if after else bisect.bisect_left
        return find(self._items, key, key=self.key)

    def created_from(self, moment: datetime, *, inclusive: bool) -> int:
        """Where the records created after `moment` (or at it, `inclusive`) start."""
        find = bisect.bisect_left if inclusive else bisect.bisect_right
        return find(self._items, moment, key=lambda item: datetime.fromisoformat(self.key(item)[0]))

    def items(self, start: int = 0, stop: int | None = None) -> list[T]:
        """The records from `start` to `stop`, in order."""
        return self._items[start:stop]


def by_creation(sort: list[tuple[str, bool]]) -> bool:
    """Whether a parsed sort is the default order (createdDate ascending, then id)."""
    return [(ALIASES.get(field, field), desc) for field, desc in sort] == [("createdDate", False)]


def usable_key(key: Any) -> Key | None:
    """A cursor's edge key as a `Key`, when comparing it as strings orders it exactly as the
    general path's comparison would: a date as Wix shows it and an id that is no date."""
    if not (isinstance(key, list) and len(key) == 2 and all(isinstance(k, str) for k in key)):
        return None
    shown, record_id = key
    if not _SHOWN.fullmatch(shown) or ISO.match(record_id):
        return None
    try:
        datetime.fromisoformat(shown)
    except ValueError:
        return None
    return shown, record_id


@dataclass(frozen=True)
class Records:
    """One kind of record as the query routes read it (under the model's lock).

    `wire` gives a record's API shape; `narrow(filter)` the records a filter can match, when
    an index makes that cheaper than all of them (None: no help for this filter).
    """

    order: CreationOrder[Any]
    wire: Callable[[Any], Doc]
    narrow: Callable[[Any], list[Any] | None] | None = None

    def docs(self, start: int = 0, stop: int | None = None) -> list[Doc]:
        """The records from `start` to `stop` in the default order, wire-shaped."""
        return [self.wire(record) for record in self.order.items(start, stop)]

    def candidates(self, filter_: Any, search: Any) -> list[Doc]:
        """Wire-shaped records that include every one `filter_` and `search` select: the
        narrowed ones only when matching can raise nothing (so neither path fails alone)."""
        narrowed = None
        if self.narrow is not None and harmless(filter_) and selects_everything(None, search):
            narrowed = self.narrow(filter_)
        if narrowed is None:
            return self.docs()
        return [self.wire(record) for record in narrowed]


def equal_to(filter_: Any, field: str) -> str | None:
    """The string a filter requires `field` to equal (as `{field: s}` or `{field: {"$eq": s}}`),
    when equality with it is plain string equality; else None."""
    value = filter_.get(field) if isinstance(filter_, dict) else None
    if is_operators(value):
        value = value.get("$eq")
    if isinstance(value, str) and not ISO.match(value):
        return value
    return None


def created_since(filter_: Any) -> tuple[datetime, bool] | None:
    """The instant a filter requires `createdDate` to be after (and whether at it is enough:
    `$gte`), when it names one with a time zone; else None."""
    value = filter_.get("createdDate") if isinstance(filter_, dict) else None
    if not is_operators(value):
        return None
    for op in ("$gt", "$gte"):
        bound = scalar(value.get(op))
        if isinstance(bound, datetime) and bound.tzinfo is not None:
            return bound, op == "$gte"
    return None
