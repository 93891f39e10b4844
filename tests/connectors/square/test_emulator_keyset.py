"""The Square emulator's indexed searches answer what sorting every record answers.

Each search is paged to the end and compared with a reference that does what the emulator
did before it kept indexes: sort every account (oldest first) or event (newest first), keep
the matching ones after the cursor, cut the page.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.square.emulator import SquareApiError, SquareEmulator, search
from connectors.square.emulator.customers import CustomerDirectory, _matches, _sorted
from connectors.square.emulator.loyalty import LoyaltyState
from connectors.square.emulator.wire import _BASE32, IdFactory
from syncd.sandbox import ids
from tests.fakes import ManualClock

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def busy_seller(accounts: int = 40) -> tuple[SquareEmulator, ManualClock]:
    """Accounts made a few per second, the clock once going back; a few events each."""
    clock = ManualClock(START)
    emulator = SquareEmulator(clock=clock, seed=2)
    made = []
    for index in range(accounts):
        made += emulator.seed_accounts(1)
        if index % 3 == 2:
            clock.advance(1)
        if index == accounts // 2:
            clock.now = START + timedelta(seconds=2)  # a clock that went back
    for index, account in enumerate(made[::3]):
        clock.advance(0.5 * (index % 2))
        emulator.activity(account["id"], "sale", 3 + index)
        emulator.activity(account["id"], "adjust", -1)
    return emulator, clock


def reference_accounts(state: LoyaltyState, query: dict[str, Any]) -> list[str]:
    """Every account `query` selects, oldest first, by sorting them all."""
    phones = {m["phone_number"] for m in query.get("mappings", [])}
    customers = query.get("customer_ids")
    ordered = sorted(state.accounts.values(), key=lambda a: (a.created, a.seq))
    return [
        a.id
        for a in ordered
        if ("mappings" not in query or a.phone in phones)
        and (customers is None or a.customer_id in customers)
    ]


def reference_events(state: LoyaltyState, wanted: search.EventFilter) -> list[str]:
    """Every event the filter selects, newest first, by sorting them all."""
    ordered = sorted(state.events, key=lambda e: (e.created, e.seq), reverse=True)
    return [e.id for e in ordered if wanted.matches(e)]


def page_all(state: LoyaltyState, find: Any, list_key: str, body: dict[str, Any]) -> list[str]:
    """The ids of every page of a search, following cursors."""
    found: list[str] = []
    while True:
        answer = find(state, body)
        found += [item["id"] for item in answer.get(list_key, [])]
        if "cursor" not in answer:
            return found
        body = {**body, "cursor": answer["cursor"]}


@pytest.mark.parametrize("size", [1, 4, 200])
def test_account_pages_follow_creation_order(size: int) -> None:
    """All accounts, by phone and by customer, page as a sort of every account would."""
    emulator, _ = busy_seller()
    state = emulator.state
    accounts = list(state.accounts.values())
    queries: list[dict[str, Any]] = [
        {},
        {"mappings": [{"phone_number": a.phone} for a in accounts[::7]]},
        {"mappings": [{"phone_number": "+15550000000"}]},
        {"customer_ids": [a.customer_id for a in accounts[1::5]] + ["NOSUCHCUSTOMER"]},
    ]
    for query in queries:
        body = {"query": query, "limit": size} if query else {"limit": size}
        found = page_all(state, search.search_accounts, "loyalty_accounts", body)
        assert found == reference_accounts(state, query)


def test_accounts_made_while_paging_are_neither_skipped_nor_repeated() -> None:
    """Each page resumes after the last account sent, new ones arriving meanwhile."""
    emulator, clock = busy_seller(20)
    before = set(emulator.state.accounts)
    body: dict[str, Any] = {"limit": 3}
    seen: list[str] = []
    while True:
        answer = search.search_accounts(emulator.state, body)
        seen += [a["id"] for a in answer.get("loyalty_accounts", [])]
        emulator.seed_accounts(1)
        clock.advance(1)
        if "cursor" not in answer:
            break
        body = {"limit": 3, "cursor": answer["cursor"]}
    assert len(seen) == len(set(seen))
    assert before <= set(seen)


@pytest.mark.parametrize("size", [1, 2, 30])
def test_event_pages_follow_the_ledger_newest_first(size: int) -> None:
    """By account, type, time window or nothing, events page as a sort of all of them would."""
    emulator, _ = busy_seller()
    state = emulator.state
    some = state.events[-1].account_id
    middle = (START + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    filters: list[dict[str, Any]] = [
        {},
        {"loyalty_account_filter": {"loyalty_account_id": some}},
        {"loyalty_account_filter": {"loyalty_account_id": "no-such-account"}},
        {"type_filter": {"types": ["ADJUST_POINTS"]}},
        {"date_time_filter": {"created_at": {"start_at": middle}}},
        {"date_time_filter": {"created_at": {"end_at": middle}}},
        {
            "loyalty_account_filter": {"loyalty_account_id": some},
            "date_time_filter": {"created_at": {"start_at": middle}},
        },
    ]
    for filter_ in filters:
        body = {"query": {"filter": filter_}, "limit": size}
        found = page_all(state, search.search_events, "events", body)
        wanted = search._event_filter(filter_, state.knobs.timestamp_precision)
        assert found == reference_events(state, wanted)


def reference_customers(book: CustomerDirectory, filter_: dict[str, Any]) -> list[str]:
    """Every customer a search for `filter_` finds, checking all of them, in default order."""
    now = book.clock()
    found = [c for c in book.customers.values() if c.visible_from <= now and _matches(c, filter_)]
    return [c.id for c in _sorted(found, {})]


def test_customer_lookups_by_phone_or_email_match_a_scan() -> None:
    """Exact phone and email searches find what checking every customer finds."""
    emulator, _ = busy_seller(10)
    book = emulator.state.customers
    emulator.seed_customer(email="Twin@Example.com", phone="(415) 555-0002", name="Twin Two")
    for filter_ in [
        {"phone_number": {"exact": "+14155550002"}},
        {"phone_number": {"exact": "4155550002"}},
        {"phone_number": {"exact": "no digits"}},
        {"email_address": {"exact": "twin@example.COM"}},
        {"email_address": {"exact": "nobody@example.com"}},
        {"email_address": {"fuzzy": "twin"}},
    ]:
        found = book.search({"query": {"filter": filter_}}).get("customers", [])
        assert [c["id"] for c in found] == reference_customers(book, filter_)
    with pytest.raises(SquareApiError):
        book.search({"query": {"filter": {"phone_number": {"exact": "1", "fuzzy": "2"}}}})
    linked = book.with_phone("+14155550002")
    assert [c.id for c in linked] == [
        c.id
        for c in book.customers.values()
        if c.fields.get("phone_number") in ("+14155550002", "(415) 555-0002")
    ]


def test_fast_ids_are_the_shared_factory_ids() -> None:
    """The Square factory draws the very GUIDs and base-32 ids the shared one draws."""
    for seed in range(20):
        fast, shared = IdFactory(seed), ids.IdFactory(seed)
        for _ in range(50):
            assert fast.uuid() == shared.uuid()
            assert fast.square_id() == shared.token(_BASE32, 26)
