"""Indexes of the Square model: records kept sorted by their keyset position — (created, seq) —
as they are added, and records grouped by a key.

Searches page oldest or newest first by that position, so a page is found by bisecting this
order instead of sorting every account or event on every call. A record nearly always sorts
last when it is made; one made on a clock that went back is inserted where it belongs.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K")
Position = tuple[datetime, int]


class CreationOrder(Generic[T]):
    """Records sorted by `position(record)`, ascending."""

    def __init__(self, position: Callable[[T], Position]) -> None:
        self.position = position
        self._items: list[T] = []

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: T) -> None:
        """Insert `item` in order (appended when it sorts last)."""
        items, position = self._items, self.position
        if not items or position(items[-1]) <= position(item):
            items.append(item)
        else:
            bisect.insort_right(items, item, key=position)

    def clear(self) -> None:
        """No records."""
        self._items.clear()

    def index(self, key: Any, *, after: bool, by: Callable[[T], Any] | None = None) -> int:
        """Where the records whose key (`by`, default the position) sorts after `key` start
        (`after`), or those at or after it; `by` must grow with the position."""
        find = bisect.bisect_right if after else bisect.bisect_left
        return find(self._items, key, key=by or self.position)

    def items(self, start: int = 0, stop: int | None = None) -> list[T]:
        """The records from `start` to `stop`, oldest first."""
        return self._items[start:stop]

    def newest_first(self, start: int, stop: int) -> Iterator[T]:
        """The records from `stop - 1` down to `start`, one at a time."""
        items = self._items
        for index in range(stop - 1, start - 1, -1):
            yield items[index]


class Grouped(Generic[K, T]):
    """Records grouped by a key, oldest first. Most keys have one record: it is kept alone,
    and only the second and later ones of a key go in a list."""

    def __init__(self) -> None:
        self._first: dict[K, T] = {}
        self._more: dict[K, list[T]] = {}

    def add(self, key: K, item: T) -> None:
        """File `item` under `key`, after the records already there."""
        if key in self._first:
            self._more.setdefault(key, []).append(item)
        else:
            self._first[key] = item

    def get(self, key: K) -> list[T]:
        """The records filed under `key`, oldest first (none: an empty list)."""
        if key not in self._first:
            return []
        return [self._first[key], *self._more.get(key, ())]

    def clear(self) -> None:
        """No records."""
        self._first.clear()
        self._more.clear()
