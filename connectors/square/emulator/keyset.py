"""Indexes of the Square model: records kept sorted by their keyset position — (created, seq) —
as they are added (records grouped by a key: `syncd.sandbox.indexes.Grouped`).

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
