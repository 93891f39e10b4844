"""Search Loyalty Accounts (oldest first) and Search Loyalty Events (newest first).

Cursors are keyset cursors (the position of the last item sent) bound to the query they were
made for: a page never repeats or skips an item when events are added between calls, and a
cursor sent with another query is 400 INVALID_CURSOR. Empty lists are left out of answers, as
Square leaves out empty fields.

Pages are read from the model's indexes, never by sorting everything: all accounts by bisecting
their creation order, mapped phones and customers by lookup, an account's events from its own
list, other events from the cursor (and the filter's start time) back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from connectors.square.emulator.errors import bad_request
from connectors.square.emulator.keyset import Position
from connectors.square.emulator.loyalty import Account, LedgerEvent, LoyaltyState, position
from connectors.square.emulator.wire import (
    Json,
    decode_cursor,
    encode_cursor,
    fingerprint,
    limit,
    obj,
    parse_time,
    string_list,
    text,
    truncate,
)

ACCOUNTS_DEFAULT, ACCOUNTS_MAX = 30, 200
EVENTS_DEFAULT, EVENTS_MAX = 30, 30
QUERY_IDS_MAX = 30
EVENT_TYPES = frozenset(
    {
        "ACCUMULATE_POINTS",
        "CREATE_REWARD",
        "REDEEM_REWARD",
        "DELETE_REWARD",
        "ADJUST_POINTS",
        "EXPIRE_POINTS",
        "OTHER",
        "ACCUMULATE_PROMOTION_POINTS",
    }
)


def search_accounts(state: LoyaltyState, body: Json) -> Json:
    """One page of accounts matching `query.mappings` or `query.customer_ids` (or all)."""
    query = obj(body.get("query"), "query")
    size = limit(body.get("limit"), default=ACCOUNTS_DEFAULT, maximum=ACCOUNTS_MAX)
    unknown = set(query) - {"mappings", "customer_ids"}
    if unknown:
        raise bad_request(f"Unknown query field `{sorted(unknown)[0]}`.", field="query")
    if query.get("mappings") is not None and query.get("customer_ids") is not None:
        raise bad_request("Use `mappings` or `customer_ids`, not both.", field="query")
    phones = _phones(query.get("mappings"))
    customer_ids = string_list(
        query.get("customer_ids"), "query.customer_ids", maximum=QUERY_IDS_MAX
    )
    query_print = fingerprint(query)
    after = _position(body.get("cursor"), query_print)
    with state.lock:
        page, more = _accounts_page(state, query, phones, customer_ids, after, size)
        answer: Json = {}
        if page:
            answer["loyalty_accounts"] = [state.account_wire(a) for a in page]
        if more:
            answer["cursor"] = _cursor(page[-1].created, page[-1].seq, query_print)
        return answer


def _accounts_page(
    state: LoyaltyState,
    query: Json,
    phones: set[str],
    customer_ids: list[str],
    after: Position | None,
    size: int,
) -> tuple[list[Account], bool]:
    """The page's accounts, oldest first, and whether more match after them."""
    if query.get("mappings") is not None:
        found = [state.account_by_phone[p] for p in phones if p in state.account_by_phone]
    elif query.get("customer_ids") is not None:
        by_customer = state.accounts_by_customer
        found = [a for c in dict.fromkeys(customer_ids) for a in by_customer.get(c)]
    else:
        order = state.account_order
        start = 0 if after is None else order.index(after, after=True)
        return order.items(start, start + size), len(order) - start > size
    matches = [a for a in sorted(found, key=position) if after is None or position(a) > after]
    return matches[:size], len(matches) > size


def search_events(state: LoyaltyState, body: Json) -> Json:
    """One page of events matching `query.filter`, newest first."""
    query = obj(body.get("query"), "query")
    size = limit(body.get("limit"), default=EVENTS_DEFAULT, maximum=EVENTS_MAX)
    wanted = _event_filter(
        obj(query.get("filter"), "query.filter"), state.knobs.timestamp_precision
    )
    query_print = fingerprint(query)
    after = _position(body.get("cursor"), query_print)
    with state.lock:
        candidates = _newest_first(state, wanted, after)
        selected = (
            e for e in candidates if wanted.matches(e) and (after is None or position(e) < after)
        )
        matches = list(islice(selected, size + 1))
        page = matches[:size]
        answer: Json = {}
        if page:
            answer["events"] = [state.event_wire(e) for e in page]
        if len(matches) > size:
            answer["cursor"] = _cursor(page[-1].created, page[-1].seq, query_print)
        return answer


def _newest_first(
    state: LoyaltyState, wanted: EventFilter, after: Position | None
) -> Iterator[LedgerEvent]:
    """Newest first, the events the filter and cursor may select: the account's own when it
    names one, else those from the filter's start time to the cursor."""
    if wanted.account_id is not None:
        own = state.events_by_account.get(wanted.account_id)
        return iter(sorted(own, key=position, reverse=True))
    order = state.event_order
    stop = len(order) if after is None else order.index(after, after=False)
    start = 0
    if wanted.start is not None:
        start = order.index(wanted.start, after=False, by=wanted.shown)
    return order.newest_first(start, stop)


@dataclass(frozen=True)
class EventFilter:
    """Search Loyalty Events' `query.filter`, read and checked."""

    precision: str
    account_id: str | None = None
    types: list[str] | None = None
    start: datetime | None = None
    end: datetime | None = None
    locations: list[str] | None = None

    def shown(self, event: LedgerEvent) -> datetime:
        """The event's time as the API shows it: what the date filter compares."""
        return truncate(event.created, self.precision)

    def matches(self, event: LedgerEvent) -> bool:
        """Whether the filter selects `event`."""
        shown = self.shown(event)
        return (
            (self.account_id is None or event.account_id == self.account_id)
            and (self.types is None or event.type in self.types)
            and (self.start is None or shown >= self.start)
            and (self.end is None or shown < self.end)
            and (self.locations is None or event.location_id in self.locations)
        )


def _event_filter(filter: Json, precision: str) -> EventFilter:
    account_filter = obj(filter.get("loyalty_account_filter"), "loyalty_account_filter")
    account_id = None
    if filter.get("loyalty_account_filter") is not None:
        account_id = text(
            account_filter.get("loyalty_account_id"),
            "query.filter.loyalty_account_filter.loyalty_account_id",
            required=True,
        )
    types: list[str] | None = None
    if filter.get("type_filter") is not None:
        type_filter = obj(filter["type_filter"], "query.filter.type_filter")
        types = string_list(type_filter.get("types"), "query.filter.type_filter.types", maximum=8)
        bad = [t for t in types if t not in EVENT_TYPES]
        if bad:
            raise bad_request(
                f"Unknown event type `{bad[0]}`.",
                code="INVALID_ENUM_VALUE",
                field="query.filter.type_filter.types",
            )
    start = end = None
    if filter.get("date_time_filter") is not None:
        where = "query.filter.date_time_filter.created_at"
        created = obj(obj(filter["date_time_filter"], "date_time_filter").get("created_at"), where)
        if created.get("start_at") is not None:
            start = parse_time(created["start_at"], f"{where}.start_at")
        if created.get("end_at") is not None:
            end = parse_time(created["end_at"], f"{where}.end_at")
    locations = None
    if filter.get("location_filter") is not None:
        location_filter = obj(filter["location_filter"], "query.filter.location_filter")
        locations = string_list(location_filter.get("location_ids"), "location_ids", maximum=30)
    for name in set(filter) - {
        "loyalty_account_filter",
        "type_filter",
        "date_time_filter",
        "location_filter",
    }:
        raise bad_request(f"Filter `{name}` is not supported by the sandbox.", field=name)
    return EventFilter(precision, account_id, types, start, end, locations)


def _phones(mappings: Any) -> set[str]:
    if mappings is None:
        return set()
    if not isinstance(mappings, list) or len(mappings) > QUERY_IDS_MAX:
        raise bad_request(
            f"`query.mappings` must be a list of at most {QUERY_IDS_MAX} mappings.",
            code="VALUE_TOO_HIGH" if isinstance(mappings, list) else "EXPECTED_ARRAY",
            field="query.mappings",
        )
    phones: set[str] = set()
    for index, mapping in enumerate(mappings):
        where = f"query.mappings[{index}].phone_number"
        phone = text(
            obj(mapping, f"query.mappings[{index}]").get("phone_number"), where, required=True
        )
        phones.add(phone or "")
    return phones


def _cursor(created: datetime, seq: int, query_print: str) -> str:
    return encode_cursor({"c": created.isoformat(), "s": seq, "q": query_print})


def _position(cursor: Any, query_print: str) -> Position | None:
    if cursor is None:
        return None
    state = decode_cursor(cursor, query_print)
    try:
        return datetime.fromisoformat(str(state["c"])), int(state["s"])
    except (KeyError, TypeError, ValueError):
        raise bad_request("Invalid cursor.", code="INVALID_CURSOR", field="cursor") from None
