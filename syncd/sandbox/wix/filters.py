"""The Wix API query language over JSON dicts: filters, free-text search and sorting.

Filters: `{"field.path": value}` (implicit `$eq`), `{"field": {"$op": value}}` with `$eq $ne
$in $exists $lt $lte $gt $gte $startsWith $hasSome`, and `$and`/`$or` (lists) and `$not`.
A path fans out over lists and over Wix's `{"items": [...]}` wrappers, so the Contacts filter
`info.emails.email` reaches `info.emails.items[].email`; a condition holds when any reached
value satisfies it (`$ne` when none equals). ISO-8601 strings (and `{"$date": ...}`) compare
as instants. Paging over these lives in `syncd.sandbox.wix.query`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeGuard

Doc = dict[str, Any]

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
ALIASES = {"_id": "id", "_createdDate": "createdDate", "_updatedDate": "updatedDate"}


class QueryError(ValueError):
    """The query is invalid; maps to a 400 validation error on `field`."""

    def __init__(self, field: str, description: str, rule: str = "INVALID") -> None:
        self.field = field
        self.description = description
        self.rule = rule
        super().__init__(f"{field}: {description}")


def values_at(doc: Any, path: str) -> list[Any]:
    """Every value reached by a dotted path, fanning out over lists and `items` wrappers."""
    nodes: list[Any] = [doc]
    for raw in path.split("."):
        segment = ALIASES.get(raw, raw)
        found: list[Any] = []
        for node in _flatten(nodes):
            if not isinstance(node, dict):
                continue
            if segment in node:
                found.append(node[segment])
            elif isinstance(node.get("items"), list):
                found.extend(
                    item[segment]
                    for item in node["items"]
                    if isinstance(item, dict) and segment in item
                )
        nodes = found
    return [value for value in _flatten(nodes) if value is not None]


def _flatten(nodes: list[Any]) -> Iterator[Any]:
    for node in nodes:
        if isinstance(node, list):
            yield from _flatten(node)
        else:
            yield node


def scalar(value: Any) -> Any:
    """Normalize a value for comparison: `{"$date": x}` unwrapped, ISO strings to datetimes."""
    if isinstance(value, dict) and "$date" in value:
        value = value["$date"]
    if isinstance(value, str) and ISO.match(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def _equal(left: Any, right: Any) -> bool:
    a, b = scalar(left), scalar(right)
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    try:
        return bool(a == b)
    except TypeError:
        return False


def _compare(left: Any, right: Any) -> int | None:
    """-1, 0 or 1; None when the two values cannot be ordered."""
    a, b = scalar(left), scalar(right)
    if isinstance(a, bool) or isinstance(b, bool):
        return None
    if isinstance(a, int | float) and isinstance(b, int | float):
        return (a > b) - (a < b)
    if isinstance(a, str) and isinstance(b, str):
        return (a > b) - (a < b)
    if isinstance(a, datetime) and isinstance(b, datetime):
        try:
            return (a > b) - (a < b)
        except TypeError:  # naive against aware
            return None
    return None


_ORDER_OPS: dict[str, Callable[[int], bool]] = {
    "$lt": lambda c: c < 0,
    "$lte": lambda c: c <= 0,
    "$gt": lambda c: c > 0,
    "$gte": lambda c: c >= 0,
}


_OPERATORS = frozenset(("$eq", "$ne", "$in", "$hasSome", "$exists", "$startsWith", *_ORDER_OPS))


def _condition(values: list[Any], op: str, operand: Any, field: str) -> bool:
    if op == "$eq":
        return any(_equal(v, operand) for v in values)
    if op == "$ne":
        return not any(_equal(v, operand) for v in values)
    if op in ("$in", "$hasSome"):
        if not isinstance(operand, list):
            raise QueryError(f"filter.{field}", f"{op} expects a list")
        return any(_equal(v, o) for v in values for o in operand)
    if op == "$exists":
        return bool(values) == bool(operand)
    if op == "$startsWith":
        return any(isinstance(v, str) and v.startswith(str(operand)) for v in values)
    if op in _ORDER_OPS:
        test = _ORDER_OPS[op]
        return any((c := _compare(v, operand)) is not None and test(c) for v in values)
    raise QueryError(f"filter.{field}", f"unsupported operator {op}", "UNSUPPORTED_OPERATOR")


def matches(doc: Doc, filter_: Any) -> bool:
    """Whether `doc` satisfies a Wix filter (an empty or missing filter matches everything)."""
    if filter_ is None:
        return True
    if not isinstance(filter_, dict):
        raise QueryError("filter", "must be an object")
    for key, value in filter_.items():
        if key == "$and":
            if not all(matches(doc, part) for part in _list_of_filters(key, value)):
                return False
        elif key == "$or":
            if not any(matches(doc, part) for part in _list_of_filters(key, value)):
                return False
        elif key == "$not":
            if matches(doc, value):
                return False
        elif key.startswith("$"):
            raise QueryError("filter", f"unsupported operator {key}", "UNSUPPORTED_OPERATOR")
        else:
            values = values_at(doc, key)
            if is_operators(value):
                if not all(_condition(values, op, arg, key) for op, arg in value.items()):
                    return False
            elif not _condition(values, "$eq", value, key):
                return False
    return True


def is_operators(value: Any) -> TypeGuard[dict[str, Any]]:
    """Whether a field's condition is `{"$op": arg, ...}` rather than a value to equal."""
    return (
        isinstance(value, dict)
        and bool(value)
        and all(k.startswith("$") for k in value)
        and "$date" not in value
    )


def harmless(filter_: Any) -> bool:
    """Whether matching `filter_` can never raise `QueryError`, whatever the document: then
    matching only the candidates that could match selects what matching every item would."""
    if filter_ is None:
        return True
    if not isinstance(filter_, dict):
        return False
    for key, value in filter_.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not all(harmless(part) for part in value):
                return False
        elif key == "$not":
            if not harmless(value):
                return False
        elif key.startswith("$") or not _harmless_condition(value):
            return False
    return True


def _harmless_condition(value: Any) -> bool:
    if not is_operators(value):
        return True  # a value to equal
    return all(
        op in _OPERATORS and (op not in ("$in", "$hasSome") or isinstance(arg, list))
        for op, arg in value.items()
    )


def selects_everything(filter_: Any, search: Any) -> bool:
    """Whether a filter and a search let every document through (and never raise)."""
    no_filter = filter_ is None or (isinstance(filter_, dict) and not filter_)
    no_search = not search or not isinstance(search, dict) or not search.get("expression")
    return no_filter and no_search


def _list_of_filters(op: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise QueryError("filter", f"{op} expects a list of filters")
    return value


def search_matches(doc: Doc, search: Any) -> bool:
    """Free-text search: each term is a case-insensitive substring of a searched field."""
    if not search or not isinstance(search, dict) or not search.get("expression"):
        return True
    terms = str(search["expression"]).lower().split()
    fields = search.get("fields") or []
    texts = (
        [str(v).lower() for f in fields for v in values_at(doc, f)]
        if fields
        else [s.lower() for s in _strings(doc)]
    )
    hits = [any(term in text for text in texts) for term in terms]
    return all(hits) if str(search.get("mode", "OR")).upper() == "AND" else any(hits)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def parse_sort(sort: Any) -> list[tuple[str, bool]]:
    """[(fieldName, descending)]; raises QueryError on a malformed sort."""
    if sort is None:
        return []
    if not isinstance(sort, list):
        raise QueryError("sort", "must be a list")
    parsed = []
    for item in sort:
        if not isinstance(item, dict) or not isinstance(item.get("fieldName"), str):
            raise QueryError("sort.fieldName", "is required")
        order = str(item.get("order", "ASC")).upper()
        if order not in ("ASC", "DESC"):
            raise QueryError("sort.order", "must be ASC or DESC")
        parsed.append((item["fieldName"], order == "DESC"))
    return parsed


def sort_key(doc: Doc, sort: list[tuple[str, bool]]) -> list[Any]:
    keys = []
    for field, _desc in sort:
        found = values_at(doc, field)
        keys.append(found[0] if found else None)
    keys.append(doc.get("id"))
    return keys


def _cmp_values(a: Any, b: Any) -> int:
    if a is None or b is None:
        return (a is not None) - (b is not None)  # missing values first
    c = _compare(a, b)
    if c is None:
        return (str(type(a)) > str(type(b))) - (str(type(a)) < str(type(b)))
    return c


def compare_keys(a: list[Any], b: list[Any], sort: list[tuple[str, bool]]) -> int:
    directions = [desc for _f, desc in sort] + [False]
    for x, y, desc in zip(a, b, directions, strict=True):
        c = _cmp_values(x, y)
        if c:
            return -c if desc else c
    return 0


def select(items: list[Doc], filter_: Any, sort: Any, search: Any = None) -> list[Doc]:
    """The items matching filter and search, in sort order (ties broken by `id`)."""
    parsed = parse_sort(sort)
    chosen = [d for d in items if matches(d, filter_) and search_matches(d, search)]

    def compare(a: Doc, b: Doc) -> int:
        return compare_keys(sort_key(a, parsed), sort_key(b, parsed), parsed)

    return sorted(chosen, key=functools.cmp_to_key(compare))
