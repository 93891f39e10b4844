"""Paging over the Wix query language (`syncd.sandbox.wix.filters`): cursor and offset pages.

Cursor paging is keyset-based: a cursor carries the filter, sort and search of the first
request plus the sort key and id of the page's edge item, so rows inserted or removed while a
client pages are neither skipped nor repeated. After the first page the client sends the
cursor (and may repeat `limit`, as the JS SDK does); anything else is ignored.

Pages come from a list of documents or from `Records` (`syncd.sandbox.wix.ordered`). Over
`Records`, a plain query (no filter, no search, the default sort) bisects the records' creation
order, so a page costs its own size, not the whole list; any other query selects and sorts the
records' candidates. Both paths answer the same pages, cursors and errors.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Protocol

from syncd.sandbox.wix.filters import Doc, compare_keys, parse_sort, selects_everything, sort_key
from syncd.sandbox.wix.filters import QueryError as QueryError  # re-exported: the API's 400
from syncd.sandbox.wix.filters import matches as matches  # re-exported for callers and tests
from syncd.sandbox.wix.filters import select as select
from syncd.sandbox.wix.ordered import Records, by_creation, usable_key

MAX_CURSOR_LIMIT = 100
DEFAULT_LIMIT = 50
Items = list[Doc] | Records


class _Sorted(Protocol):
    """The documents a query selects, in its sort order."""

    def __len__(self) -> int: ...

    def key_at(self, position: int) -> list[Any]:
        """The sort key a cursor carries for the document at `position`."""
        ...

    def start(self, cursor: dict[str, Any], *, after: bool) -> int:
        """Where the documents sorting after the cursor's key start (`after`), or those at
        or after it."""
        ...

    def docs(self, start: int, stop: int) -> list[Doc]:
        """The documents from `start` to `stop`."""
        ...


@dataclass(frozen=True)
class _Selected:
    """The general path: every matching document, sorted, with its key."""

    ordered: list[Doc]
    keys: list[list[Any]]
    sort: list[tuple[str, bool]]

    def __len__(self) -> int:
        return len(self.ordered)

    def key_at(self, position: int) -> list[Any]:
        return self.keys[position]

    def start(self, cursor: dict[str, Any], *, after: bool) -> int:
        # The cursor's key is read per document, so a cursor without one fails only when
        # there is a document to compare it with.
        least = 1 if after else 0
        return next(
            (
                i
                for i, k in enumerate(self.keys)
                if compare_keys(k, cursor["k"], self.sort) >= least
            ),
            len(self.keys),
        )

    def docs(self, start: int, stop: int) -> list[Doc]:
        return self.ordered[start:stop]


@dataclass(frozen=True)
class _Bisected:
    """The plain query over `Records`: every record, already in order."""

    records: Records

    def __len__(self) -> int:
        return len(self.records.order)

    def key_at(self, position: int) -> list[Any]:
        return list(self.records.order.key_at(position))

    def start(self, cursor: dict[str, Any], *, after: bool) -> int:
        key = usable_key(cursor.get("k"))
        if key is None:  # not reached: `_sorted` bisects only for a usable key
            raise QueryError("cursorPaging.cursor", "is not a valid cursor")
        return self.records.order.position(key, after=after)

    def docs(self, start: int, stop: int) -> list[Doc]:
        return self.records.docs(start, stop)


def _sorted(
    items: Items, filter_: Any, sort: Any, search: Any, cursor: dict[str, Any] | None
) -> _Sorted:
    parsed = parse_sort(sort)
    if (
        isinstance(items, Records)
        and by_creation(parsed)
        and selects_everything(filter_, search)
        and (cursor is None or usable_key(cursor.get("k")) is not None)
    ):
        return _Bisected(items)
    docs = items.candidates(filter_, search) if isinstance(items, Records) else items
    ordered = select(docs, filter_, sort, search)
    return _Selected(ordered, [sort_key(d, parsed) for d in ordered], parsed)


def _limit(value: Any, field: str, maximum: int) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise QueryError(field, "must be an integer")
    try:
        limit = int(value)
    except ValueError as exc:
        raise QueryError(field, "must be an integer") from exc
    if limit < 0:
        raise QueryError(field, "must be at least 0", "MIN")
    if limit > maximum:
        raise QueryError(field, f"must be at most {maximum}", "MAX")
    return limit


def _encode(state: dict[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise QueryError("cursorPaging.cursor", "is not a valid cursor") from exc
    if not isinstance(state, dict) or state.get("d") not in ("next", "prev"):
        raise QueryError("cursorPaging.cursor", "is not a valid cursor")
    return state


def cursor_page(
    items: Items,
    query: Any,
    *,
    max_limit: int = MAX_CURSOR_LIMIT,
    max_sort: int | None = None,
    default_sort: list[dict[str, str]] | None = None,
) -> tuple[list[Doc], dict[str, Any]]:
    """One page of a cursor-paged query or search; returns (items, pagingMetadata).

    Without a `sort`, `default_sort` applies; `id` always breaks ties, so paging is stable.
    """
    query = query or {}
    paging = query.get("cursorPaging") or {}
    cursor = paging.get("cursor")
    if cursor:
        state = _decode(str(cursor))
        filter_, sort, search = state.get("f"), state.get("s"), state.get("x")
        limit = _limit(paging.get("limit", state.get("l")), "cursorPaging.limit", max_limit)
    else:
        state = None
        filter_, sort, search = query.get("filter"), query.get("sort"), query.get("search")
        if max_sort is not None and isinstance(sort, list) and len(sort) > max_sort:
            raise QueryError("sort", f"at most {max_sort} sort items", "MAX_SIZE")
        sort = sort or default_sort or []
        limit = _limit(paging.get("limit"), "cursorPaging.limit", max_limit)
    ordered = _sorted(items, filter_, sort, search, state)
    if state is None:
        start = 0
    elif state["d"] == "next":
        start = ordered.start(state, after=True)
    else:
        start = max(ordered.start(state, after=False) - limit, 0)
    page = ordered.docs(start, start + limit)
    has_next = start + len(page) < len(ordered)
    base = {"f": filter_, "s": sort, "x": search, "l": limit}
    cursors: dict[str, str | None] = {"next": None, "prev": None}
    if has_next and page:
        cursors["next"] = _encode({**base, "d": "next", "k": ordered.key_at(start + len(page) - 1)})
    if start > 0 and page:
        cursors["prev"] = _encode({**base, "d": "prev", "k": ordered.key_at(start)})
    metadata = {"count": len(page), "cursors": cursors, "hasNext": has_next}
    return page, metadata


def offset_page(
    items: Items,
    query: Any,
    *,
    max_limit: int = 1000,
    max_sort: int | None = None,
    default_sort: list[dict[str, str]] | None = None,
    search: Any = None,
) -> tuple[list[Doc], dict[str, Any]]:
    """One page of an offset-paged query; returns (items, pagingMetadata with total)."""
    query = query or {}
    sort = query.get("sort") or default_sort
    if max_sort is not None and isinstance(sort, list) and len(sort) > max_sort:
        raise QueryError("query.sort", f"at most {max_sort} sort item(s)", "MAX_SIZE")
    paging = query.get("paging") or {}
    limit = _limit(paging.get("limit"), "query.paging.limit", max_limit)
    offset = paging.get("offset") or 0
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise QueryError("query.paging.offset", "must be a non-negative integer")
    ordered = _sorted(items, query.get("filter"), sort, search, None)
    page = ordered.docs(offset, offset + limit)
    metadata = {
        "count": len(page),
        "offset": offset,
        "total": len(ordered),
        "tooManyToCount": False,
    }
    return page, metadata
