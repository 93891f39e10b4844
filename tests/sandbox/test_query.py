"""The Wix query language: filters, sorting, search, keyset cursors and offset paging."""

from __future__ import annotations

from typing import Any

import pytest

from syncd.sandbox.wix.query import QueryError, cursor_page, matches, offset_page, select

DOCS: list[dict[str, Any]] = [
    {
        "id": "a",
        "createdDate": "2025-01-01T00:00:00.000Z",
        "points": {"balance": 10},
        "contact": {"email": "ann@x.io"},
        "tier": {},
    },
    {
        "id": "b",
        "createdDate": "2025-01-02T00:00:00.000Z",
        "points": {"balance": 0},
        "contact": {"email": "ben@x.io"},
        "memberId": "m1",
    },
    {
        "id": "c",
        "createdDate": "2025-01-03T00:00:00.000Z",
        "points": {"balance": 99},
        "contact": {"email": "cleo@y.io", "name": "Cleo Park"},
    },
]


def ids(docs: list[dict[str, Any]]) -> list[str]:
    """The ids of `docs`, in order."""
    return [d["id"] for d in docs]


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ({}, ["a", "b", "c"]),
        ({"id": "b"}, ["b"]),
        ({"contact.email": {"$eq": "ann@x.io"}}, ["a"]),
        ({"id": {"$ne": "b"}}, ["a", "c"]),
        ({"id": {"$in": ["a", "c", "z"]}}, ["a", "c"]),
        ({"memberId": {"$exists": True}}, ["b"]),
        ({"memberId": {"$exists": False}}, ["a", "c"]),
        ({"points.balance": {"$gt": 0, "$lt": 99}}, ["a"]),
        ({"points.balance": {"$gte": 10}}, ["a", "c"]),
        ({"points.balance": {"$lte": 10}}, ["a", "b"]),
        ({"createdDate": {"$gt": "2025-01-01T00:00:00Z"}}, ["b", "c"]),
        ({"createdDate": {"$lt": {"$date": "2025-01-02T00:00:00.000Z"}}}, ["a"]),
        ({"$or": [{"id": "a"}, {"points.balance": 99}]}, ["a", "c"]),
        ({"$and": [{"points.balance": {"$gte": 0}}, {"id": {"$ne": "a"}}]}, ["b", "c"]),
        ({"$not": {"id": "a"}}, ["b", "c"]),
        ({"contact.email": {"$startsWith": "b"}}, ["b"]),
    ],
)
def test_filters_select_the_matching_documents(
    filter_: dict[str, Any], expected: list[str]
) -> None:
    """Each operator of the Wix query language selects what Wix would."""
    assert ids([d for d in DOCS if matches(d, filter_)]) == expected


def test_paths_reach_through_items_wrappers() -> None:
    """`info.emails.email` matches any email in `info.emails.items`."""
    contact = {"info": {"emails": {"items": [{"email": "a@x.io"}, {"email": "b@x.io"}]}}}
    assert matches(contact, {"info.emails.email": "b@x.io"})
    assert not matches(contact, {"info.emails.email": "c@x.io"})


def test_unknown_operators_are_refused() -> None:
    """An operator Wix does not know is a 400, not a silent match."""
    with pytest.raises(QueryError):
        matches(DOCS[0], {"id": {"$regex": "a"}})
    with pytest.raises(QueryError):
        matches(DOCS[0], {"$nor": []})


def test_sort_orders_by_fields_then_id() -> None:
    """Sorting follows the fields and directions given; id breaks ties."""
    by_balance = select(DOCS, None, [{"fieldName": "points.balance", "order": "DESC"}])
    assert ids(by_balance) == ["c", "a", "b"]
    assert ids(select(DOCS, None, [{"fieldName": "contact.email"}])) == ["a", "b", "c"]


def test_search_expression_matches_any_text_field() -> None:
    """Free-text search matches case-insensitively, in all fields or the ones named."""
    assert ids(select(DOCS, None, None, {"expression": "PARK"})) == ["c"]
    assert ids(select(DOCS, None, None, {"expression": "x.io", "fields": ["contact.email"]})) == [
        "a",
        "b",
    ]
    both = {"expression": "cleo y.io", "mode": "AND"}
    assert ids(select(DOCS, None, None, both)) == ["c"]


def test_cursor_paging_walks_forward_and_back() -> None:
    """next and prev cursors walk the pages; hasNext and next are unset on the last page."""
    docs = [{"id": f"{i:03d}", "n": i} for i in range(7)]
    page1, meta1 = cursor_page(docs, {"cursorPaging": {"limit": 3}, "sort": [{"fieldName": "n"}]})
    assert ids(page1) == ["000", "001", "002"]
    assert meta1["hasNext"] and meta1["cursors"]["prev"] is None and meta1["count"] == 3
    page2, meta2 = cursor_page(docs, {"cursorPaging": {"cursor": meta1["cursors"]["next"]}})
    page3, meta3 = cursor_page(docs, {"cursorPaging": {"cursor": meta2["cursors"]["next"]}})
    assert ids(page2) == ["003", "004", "005"] and ids(page3) == ["006"]
    assert meta3 == {
        "count": 1,
        "cursors": {"next": None, "prev": meta3["cursors"]["prev"]},
        "hasNext": False,
    }
    back, _ = cursor_page(docs, {"cursorPaging": {"cursor": meta3["cursors"]["prev"]}})
    assert ids(back) == ["003", "004", "005"]


def test_the_cursor_carries_filter_and_sort_and_limit_may_be_repeated() -> None:
    """After page one only the cursor counts (a repeated limit is honoured, as the SDK sends it)."""
    docs = [{"id": f"{i:03d}", "even": i % 2 == 0} for i in range(10)]
    first = {
        "filter": {"even": True},
        "sort": [{"fieldName": "id", "order": "DESC"}],
        "cursorPaging": {"limit": 2},
    }
    page1, meta = cursor_page(docs, first)
    page2, _ = cursor_page(
        docs,
        {
            "filter": {"even": False},
            "cursorPaging": {"cursor": meta["cursors"]["next"], "limit": 3},
        },
    )
    assert ids(page1) == ["008", "006"]
    assert ids(page2) == ["004", "002", "000"]


def test_keyset_cursor_neither_skips_nor_repeats_when_rows_are_inserted() -> None:
    """Rows inserted before and after the cursor do not shift the following pages."""
    docs = [{"id": f"{i:03d}", "email": f"m{i:03d}@x.io"} for i in range(0, 100, 2)]
    query = {"sort": [{"fieldName": "email"}], "cursorPaging": {"limit": 10}}
    seen: list[str] = []
    page, meta = cursor_page(docs, query)
    seen += ids(page)
    inserted = 0
    while meta["cursors"]["next"]:
        docs.append({"id": f"new{inserted}", "email": f"a{inserted}@x.io"})  # sorts first
        docs.append({"id": f"{inserted * 2 + 1:03d}", "email": f"m{inserted * 2 + 1:03d}@x.io"})
        inserted += 1
        page, meta = cursor_page(docs, {"cursorPaging": {"cursor": meta["cursors"]["next"]}})
        seen += ids(page)
    assert len(seen) == len(set(seen))
    assert {f"{i:03d}" for i in range(0, 100, 2)} <= set(seen)


@pytest.mark.parametrize("limit", [101, -1, "many", True])
def test_cursor_limit_above_100_or_malformed_is_refused(limit: object) -> None:
    """cursorPaging.limit must be an integer 0..100."""
    with pytest.raises(QueryError) as caught:
        cursor_page(DOCS, {"cursorPaging": {"limit": limit}})
    assert caught.value.field == "cursorPaging.limit"


def test_a_forged_cursor_is_refused() -> None:
    """A cursor the emulator did not make is a 400."""
    with pytest.raises(QueryError):
        cursor_page(DOCS, {"cursorPaging": {"cursor": "bm90LWEtY3Vyc29y"}})


def test_offset_paging_reports_offset_and_total() -> None:
    """Offset paging returns the slice with count, offset and total; limit max 1000."""
    docs = [{"id": f"{i:03d}"} for i in range(12)]
    page, meta = offset_page(docs, {"paging": {"limit": 5, "offset": 10}})
    assert ids(page) == ["010", "011"]
    assert meta == {"count": 2, "offset": 10, "total": 12, "tooManyToCount": False}
    with pytest.raises(QueryError):
        offset_page(docs, {"paging": {"limit": 1001}})
