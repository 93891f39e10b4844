"""Indexes the emulators keep beside their records (each emulator's own creation order lives
with its model: Wix and Square sort by different keys)."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K")


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
