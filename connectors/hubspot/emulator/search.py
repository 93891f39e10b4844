"""POST /crm/v3/objects/contacts/search: filters, one sort, offset paging, the lagging index.

    {"filterGroups": [{"filters": [{"propertyName", "operator", "value" | "values" |
                                    "highValue"}]}],      OR between groups, AND within
     "sorts": [{"propertyName", "direction"}] | ["name"], "query", "properties", "limit" <= 200,
     "after"}
    -> {"total", "results": [...], "paging"?: {"next": {"after"}}}

Search reads the index, not the records: each contact as it stood `search_lag_seconds` ago
(`Contact.indexed`), so a fresh write is not found yet and the previous value is. Values
compare by the property's type (numbers as decimals, datetimes as instants, the rest as
case-insensitive text); a contact without the value never matches a comparison but does
match NEQ and NOT_IN. Results past `search_max_results` are never given: the page reaching it
still offers `after`, and asking for it is a 400, as HubSpot does at 10,000.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.hubspot.emulator.contacts import ALWAYS_SHOWN, DEFAULT_PROPERTIES, Contact, Version
from connectors.hubspot.emulator.errors import validation_error
from connectors.hubspot.emulator.properties import PropertyBook, PropertyDef
from connectors.hubspot.emulator.wire import Json, names, obj, page_limit, parse_moment

OPERATORS = {
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
}
MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 6, 18
MAX_LIMIT, DEFAULT_LIMIT = 200, 10
QUERY_PROPERTIES = ("email", "firstname", "lastname", "phone")

Match = Callable[[Version], bool]


def search(
    contacts: list[Contact],
    book: PropertyBook,
    body: Json,
    *,
    now: datetime,
    lag_seconds: float,
    max_results: int,
) -> Json:
    """One page of the contacts the index holds at `now - lag_seconds` that match `body`."""
    groups = [_group(book, group) for group in _groups(body.get("filterGroups"))]
    query = body.get("query")
    if query is not None and not isinstance(query, str):
        raise validation_error("Invalid input JSON: `query` must be a string.")
    key = _sort_key(book, body.get("sorts"))
    limit = page_limit(body.get("limit"), default=DEFAULT_LIMIT, maximum=MAX_LIMIT)
    offset = _offset(body.get("after"), max_results)
    shown = names(body.get("properties"), "properties") or list(DEFAULT_PROPERTIES)
    cutoff = now - timedelta(seconds=lag_seconds)
    found: list[tuple[Contact, Version]] = []
    for contact in contacts:
        version = contact.indexed(cutoff)
        if version is None or not _matches(version, groups, query):
            continue
        found.append((contact, version))
    found.sort(key=lambda pair: int(pair[0].id))
    if key is not None:
        found.sort(key=lambda pair: key(pair[1]))
    end = min(offset + limit, max_results)
    page = found[offset:end]
    answer: Json = {
        "total": len(found),
        "results": [_shown(c, v, shown, book) for c, v in page],
    }
    if end < len(found):
        answer["paging"] = {"next": {"after": str(end)}}
    return answer


def _shown(contact: Contact, version: Version, shown: list[str], book: PropertyBook) -> Json:
    wanted = [n for n in [*shown, *ALWAYS_SHOWN] if n in book.defined]
    values = {n: version.values.get(n) for n in wanted}
    return contact.render(values, contact.created_at, version.updated_at)


def _offset(after: Any, max_results: int) -> int:
    if after is None or after == "":
        return 0
    text = str(after)
    if not text.isdigit():
        raise validation_error(f"Invalid input JSON: `after` must be a number, got {after!r}.")
    offset = int(text)
    if offset >= max_results:
        raise validation_error(
            f"There was a problem with the request: search results are limited to "
            f"{max_results}; `after` {offset} is beyond them."
        )
    return offset


def _groups(value: Any) -> list[Json]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(g, dict) for g in value):
        raise validation_error("Invalid input JSON: `filterGroups` must be a list of objects.")
    counts = [len(g.get("filters") or []) for g in value]
    if len(value) > MAX_GROUPS or max(counts, default=0) > MAX_FILTERS_PER_GROUP:
        raise validation_error(
            f"Too many filters: at most {MAX_GROUPS} filterGroups of at most "
            f"{MAX_FILTERS_PER_GROUP} filters each."
        )
    if sum(counts) > MAX_FILTERS:
        raise validation_error(f"Too many filters: at most {MAX_FILTERS} in all.")
    return value


def _group(book: PropertyBook, group: Json) -> list[Match]:
    filters = group.get("filters")
    if not isinstance(filters, list) or not all(isinstance(f, dict) for f in filters):
        raise validation_error("Invalid input JSON: `filters` must be a list of objects.")
    return [_filter(book, f) for f in filters]


def _matches(version: Version, groups: list[list[Match]], query: str | None) -> bool:
    if groups and not any(all(match(version) for match in group) for group in groups):
        return False
    if query:
        texts = [version.values.get(n, "").lower() for n in QUERY_PROPERTIES]
        return all(any(word in t for t in texts) for word in query.lower().split())
    return True


def _filter(book: PropertyBook, spec: Json) -> Match:
    """One filter as a predicate on an indexed version."""
    name, operator = spec.get("propertyName"), spec.get("operator")
    if not isinstance(name, str) or name not in book.defined:
        raise validation_error(f"Invalid filter: there is no property named {name!r}.")
    if operator not in OPERATORS:
        raise validation_error(f"Invalid filter: operator {operator!r} is not supported.")
    prop = book.defined[name]
    if operator == "HAS_PROPERTY":
        return lambda v: name in v.values
    if operator == "NOT_HAS_PROPERTY":
        return lambda v: name not in v.values
    if operator in ("IN", "NOT_IN"):
        wanted = {_comparable(prop, x) for x in _values(spec)}
        inside = operator == "IN"
        return lambda v: (
            (name in v.values and _comparable(prop, v.values[name]) in wanted) is inside
        )
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern = _value(spec, "value").lower()
        contains = operator == "CONTAINS_TOKEN"

        def token_match(v: Version) -> bool:
            words = v.values.get(name, "").lower().split()
            return any(fnmatch.fnmatchcase(w, pattern) for w in words) is contains

        return token_match
    low = _comparable(prop, _value(spec, "value"))
    if operator == "BETWEEN":
        high = _comparable(prop, _value(spec, "highValue"))
        return lambda v: name in v.values and low <= _comparable(prop, v.values[name]) <= high
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "EQ": lambda a, b: a == b,
        "NEQ": lambda a, b: a != b,
        "LT": lambda a, b: a < b,
        "LTE": lambda a, b: a <= b,
        "GT": lambda a, b: a > b,
        "GTE": lambda a, b: a >= b,
    }
    check = compare[str(operator)]
    if operator == "NEQ":
        return lambda v: name not in v.values or check(_comparable(prop, v.values[name]), low)
    return lambda v: name in v.values and check(_comparable(prop, v.values[name]), low)


def _value(spec: Json, key: str) -> str:
    value = spec.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise validation_error(f"Invalid filter: `{key}` is required for {spec.get('operator')}.")
    return str(value)


def _values(spec: Json) -> list[str]:
    values = spec.get("values")
    if not isinstance(values, list) or not values:
        raise validation_error(f"Invalid filter: `values` is required for {spec.get('operator')}.")
    return [str(v) for v in values]


def _comparable(prop: PropertyDef, text: str) -> Any:
    """A value in the order its type sorts in: decimal, instant, or lower-case text."""
    if prop.type == "number":
        try:
            return Decimal(text)
        except InvalidOperation:
            raise validation_error(
                f"Invalid filter value {text!r} for number {prop.name}."
            ) from None
    if prop.type in ("datetime", "date"):
        moment = parse_moment(text)
        if moment is None:
            raise validation_error(f"Invalid filter value {text!r} for datetime {prop.name}.")
        return moment
    return text.lower()


def _sort_key(book: PropertyBook, sorts: Any) -> Callable[[Version], Any] | None:
    """The one sort HubSpot allows: `{"propertyName", "direction"}` or a name ("-name" for
    descending); contacts without the value come last."""
    if sorts is None or sorts == []:
        return None
    if not isinstance(sorts, list) or len(sorts) > 1:
        raise validation_error("Invalid input JSON: `sorts` takes at most one sort.")
    spec = sorts[0]
    name: Any
    if isinstance(spec, str):
        descending, name = spec.startswith("-"), spec.lstrip("-")
    else:
        spec = obj(spec, "sorts[0]")
        name, direction = spec.get("propertyName"), spec.get("direction", "ASCENDING")
        if direction not in ("ASCENDING", "DESCENDING"):
            raise validation_error(f"Invalid sort direction {direction!r}.")
        descending = direction == "DESCENDING"
    if not isinstance(name, str) or name not in book.defined:
        raise validation_error(f"Invalid sort: there is no property named {name!r}.")
    prop = book.defined[name]

    def key(version: Version) -> Any:
        raw = version.values.get(name)
        if raw is None:
            return _Last()
        value = _comparable(prop, raw)
        return _Reversed(value) if descending else value

    return key


class _Last:
    """Sorts after every value."""

    def __lt__(self, other: object) -> bool:
        return False

    def __gt__(self, other: object) -> bool:
        return not isinstance(other, _Last)


class _Reversed:
    """A value in descending order."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: object) -> bool:
        if isinstance(other, _Last):
            return True
        return bool(self.value > other.value) if isinstance(other, _Reversed) else False
