"""The Wix emulator's indexed paging answers exactly what sorting every record answers.

Each test drives `query.cursor_page` / `query.offset_page` twice on the same model: over the
model's `Records` (bisected creation order, narrowed ledger) and over the plain wire lists
(the general path: select, then sort), and compares pages, metadata and cursors.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from syncd.sandbox import ids
from syncd.sandbox.wix import WixApiError, WixEmulator, query
from syncd.sandbox.wix.ordered import CreationOrder
from syncd.sandbox.wix.query import QueryError
from syncd.sandbox.wix.state import WixState
from syncd.sandbox.wix.wire import IdFactory
from tests.fakes import ManualClock

BY_CREATION = [{"fieldName": "createdDate", "order": "ASC"}]
START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def crowded_site(accounts: int = 60) -> tuple[WixEmulator, ManualClock]:
    """A site whose accounts were made a few per millisecond, the clock once going back."""
    clock = ManualClock(START)
    emulator = WixEmulator(clock=clock, seed=3)
    emulator.activate()
    for index in range(accounts):
        emulator.seed_accounts(1)
        if index % 4 == 3:
            clock.advance(0.0004 if index % 8 == 3 else 0.002)
        if index == accounts // 2:
            clock.now = START + timedelta(milliseconds=1)  # a clock that went back
    return emulator, clock


def both_pages(
    state: WixState, request: dict[str, Any], **options: Any
) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """(indexed answer, general answer) for one Query Accounts request."""
    with state.lock:
        indexed = query.cursor_page(state.account_records(), request, **options)
        general = query.cursor_page(state.all_accounts(), request, **options)
    return indexed, general


def walk(
    state: WixState, first: dict[str, Any], direction: str = "next"
) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """Every page from `first` on, following `direction` cursors, checking both paths agree;
    returns the pages' ids and requests."""
    pages: list[list[str]] = []
    requests: list[dict[str, Any]] = []
    request: dict[str, Any] | None = first
    while request is not None:
        indexed, general = both_pages(state, request, default_sort=BY_CREATION)
        assert indexed == general
        page, meta = indexed
        pages.append([doc["id"] for doc in page])
        requests.append(request)
        cursor = meta["cursors"][direction]
        request = {"cursorPaging": {"cursor": cursor}} if cursor else None
    return pages, requests


@pytest.mark.parametrize("limit", [1, 7, 50, 100])
def test_default_pages_match_the_general_path_both_ways(limit: int) -> None:
    """Next and prev cursors over same-millisecond accounts give the general path's pages."""
    emulator, _ = crowded_site()
    forward, requests = walk(
        emulator.state, {"sort": BY_CREATION, "cursorPaging": {"limit": limit}}
    )
    assert sorted(i for page in forward for i in page) == sorted(emulator.state.accounts)
    back, _ = walk(emulator.state, requests[-1], "prev")
    assert back == forward[::-1]


def test_accounts_made_while_paging_are_neither_skipped_nor_repeated() -> None:
    """New accounts land after the cursor (or before it, once the clock went back): every
    account that existed at the start comes exactly once, as on the general path."""
    emulator, clock = crowded_site(30)
    before = set(emulator.state.accounts)
    request: dict[str, Any] | None = {"cursorPaging": {"limit": 4}}
    seen: list[str] = []
    while request is not None:
        indexed, general = both_pages(emulator.state, request, default_sort=BY_CREATION)
        assert indexed == general
        seen += [doc["id"] for doc in indexed[0]]
        emulator.seed_accounts(2)
        clock.advance(0.001)
        cursor = indexed[1]["cursors"]["next"]
        request = {"cursorPaging": {"cursor": cursor}} if cursor else None
    assert len(seen) == len(set(seen))
    assert before <= set(seen)


@pytest.mark.parametrize(
    "request_",
    [
        {"filter": {"points.balance": {"$gt": 100}}, "cursorPaging": {"limit": 5}},
        {"sort": [{"fieldName": "points.balance", "order": "DESC"}], "cursorPaging": {"limit": 5}},
        {"sort": [{"fieldName": "_createdDate"}], "cursorPaging": {"limit": 5}},
        {"sort": [{"fieldName": "createdDate", "order": "DESC"}], "cursorPaging": {"limit": 5}},
        {"search": {"expression": "Ann"}, "cursorPaging": {"limit": 5}},
        {"filter": {}, "cursorPaging": {"limit": 0}},
    ],
)
def test_other_queries_page_as_before(request_: dict[str, Any]) -> None:
    """Filters, searches and other sorts take the general path, with the same pages."""
    emulator, _ = crowded_site(25)
    pages, _ = walk(emulator.state, request_)
    assert pages


@pytest.mark.parametrize(
    "key",
    [
        ["2025-03-01T12:00:00.001Z"],
        ["2025-03-01T12:00:00Z", "x"],
        ["2025-13-01T12:00:00.001Z", "x"],
        ["2025-03-01T12:00:00.001Z", "2025-03-01T12:00"],
        [None, "x"],
    ],
)
def test_odd_cursor_keys_answer_as_the_general_path(key: list[Any]) -> None:
    """A cursor whose key a string comparison would misorder falls back to the general path."""
    emulator, _ = crowded_site(12)
    cursor = query._encode({"f": None, "s": BY_CREATION, "x": None, "l": 3, "d": "next", "k": key})
    request = {"cursorPaging": {"cursor": cursor}}
    try:
        indexed: Any = both_pages(emulator.state, request)[0]
    except Exception as error:  # the general path may fail on such a key: so must this one
        indexed = type(error)
    try:
        general: Any = query.cursor_page(emulator.state.all_accounts(), request)
    except Exception as error:
        general = type(error)
    assert indexed == general


def test_contact_pages_match_the_general_path() -> None:
    """Offset pages of contacts (default sort) are the general path's, total included."""
    emulator, _ = crowded_site(40)
    contacts = emulator.state.contacts
    for offset, limit in [(0, 7), (7, 7), (35, 10), (40, 5), (99, 5), (0, 1000)]:
        request = {"paging": {"offset": offset, "limit": limit}}
        indexed = query.offset_page(contacts.records(), request, default_sort=BY_CREATION)
        assert indexed == query.offset_page(contacts.all(), request, default_sort=BY_CREATION)
    filtered = {"filter": {"info.name.first": "Ann"}, "paging": {"limit": 3}}
    assert query.offset_page(contacts.records(), filtered, default_sort=BY_CREATION) == (
        query.offset_page(contacts.all(), filtered, default_sort=BY_CREATION)
    )


def test_ledger_filters_read_only_matching_transactions_with_the_same_pages() -> None:
    """An account's transactions, or those from a time on, page as over the whole ledger."""
    emulator, clock = crowded_site(20)
    state = emulator.state
    some = list(state.accounts)[:5]
    for index, account_id in enumerate(some * 3):
        clock.advance(0.0005 * (index % 3))
        emulator.activity(account_id, "earn", 5 + index)
    middle = sorted(t["createdDate"] for t in state.all_transactions())[25]
    filters = [
        {"accountId": some[1]},
        {"accountId": {"$eq": some[2]}, "createdDate": {"$gte": middle}},
        {"accountId": "no-such-account"},
        {"createdDate": {"$gt": middle}},
        {"createdDate": {"$gte": {"$date": middle}}, "transactionType": "EARN"},
        {"$or": [{"accountId": some[0]}, {"accountId": some[3]}]},
    ]
    for filter_ in filters:
        request: dict[str, Any] | None = {"filter": filter_, "cursorPaging": {"limit": 2}}
        while request is not None:
            with state.lock:
                indexed = query.cursor_page(
                    state.transaction_records(), request, default_sort=BY_CREATION
                )
            general = query.cursor_page(state.all_transactions(), request, default_sort=BY_CREATION)
            assert indexed == general
            cursor = indexed[1]["cursors"]["next"]
            request = {"cursorPaging": {"cursor": cursor}} if cursor else None


def test_accounts_by_email_read_only_that_emails_contacts_with_the_same_pages() -> None:
    """Search by `contact.email` finds what matching every account finds: duplicates, other
    cases, second emails and contacts without an account included."""
    emulator, _ = crowded_site(10)
    state = emulator.state
    emulator.seed_accounts([{"email": "twin@x.io", "name": "Ann One"}] * 3)
    emulator.seed_accounts([{"email": "TWIN@x.io", "name": "Ben Two"}])
    second = {"emails": {"items": [{"email": "first@x.io"}, {"email": "twin@x.io"}]}}
    state.open_account(state.contacts.create(second, allow_duplicates=True)["id"])
    state.contacts.create({"emails": {"items": [{"email": "twin@x.io"}]}}, allow_duplicates=True)
    expected = {"twin@x.io": 3, "TWIN@x.io": 1, "first@x.io": 1, "customer3@example.com": 1}
    for email in [*expected, "no@x.io"]:
        request = {"filter": {"contact.email": {"$eq": email}}, "cursorPaging": {"limit": 2}}
        pages, _ = walk(state, request)
        found = [i for page in pages for i in page]
        assert len(found) == expected.get(email, 0)
        assert found == [
            a["id"] for a in query.select(state.all_accounts(), request["filter"], BY_CREATION)
        ]


def test_a_bad_filter_is_refused_though_an_index_could_answer() -> None:
    """A filter that fails on a transaction fails even when naming an account without any."""
    emulator, _ = crowded_site(3)
    bad = {"filter": {"createdDate": {"$regex": "x"}, "accountId": "none"}}
    with pytest.raises(QueryError):
        query.cursor_page(emulator.state.all_transactions(), bad)
    with emulator.state.lock, pytest.raises(QueryError):
        query.cursor_page(emulator.state.transaction_records(), bad)


def test_creation_order_sorts_whatever_the_insertion_order() -> None:
    """Records added in any order come out sorted by (createdDate, id)."""
    rng = random.Random(5)
    order: CreationOrder[tuple[str, str]] = CreationOrder(lambda key: key)
    keys = [(f"2025-03-01T12:00:00.{rng.randrange(40):03d}Z", f"{n:04x}") for n in range(500)]
    keys += sorted(keys[-50:])  # long runs in order, then out of order again
    for key in keys:
        order.add(key)
    assert order.items() == sorted(keys)
    probe = ("2025-03-01T12:00:00.020Z", "0100")
    assert order.position(probe, after=True) == sum(1 for k in keys if k <= probe)
    assert order.position(probe, after=False) == sum(1 for k in keys if k < probe)


def test_the_duplicate_refusal_names_the_oldest_contact() -> None:
    """With two emails owned by two contacts, the 409 names the older one, as a scan would."""
    emulator, _ = crowded_site(0)
    contacts = emulator.state.contacts
    older = contacts.create({"emails": {"items": [{"email": "b@x.io"}]}})
    contacts.create({"emails": {"items": [{"email": "A@x.io"}]}})
    with pytest.raises(WixApiError) as refused:
        contacts.create({"emails": {"items": [{"email": "a@X.io"}, {"email": "B@x.io"}]}})
    assert refused.value.data == {"duplicateContactId": older["id"], "duplicateEmail": "b@x.io"}


def test_fast_ids_are_the_shared_factory_ids() -> None:
    """The Wix factory draws the very GUIDs (and tokens) the shared one draws."""
    for seed in range(20):
        fast, shared = IdFactory(seed), ids.IdFactory(seed)
        for _ in range(50):
            assert fast() == shared()
            assert fast.token("ab", 3) == shared.token("ab", 3)
