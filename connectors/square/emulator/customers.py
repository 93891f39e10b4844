"""The seller's Customer Directory: create, get, bulk retrieve, and an eventually consistent search.

A new customer becomes visible to Search Customers `customer_search_lag_seconds` after it is
created (Square: "well under 30 seconds, occasionally a minute"); Get, Bulk Retrieve and the
Loyalty API's own phone lookup see it at once. Search filters supported: `email_address`,
`phone_number` and `reference_id` (each `exact` or `fuzzy`), `created_at` and `updated_at`
(time ranges); sort `DEFAULT` (given then family name) or `CREATED_AT`, `ASC` or `DESC`.
Email matching ignores case; phone matching compares E.164 forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.square.emulator.errors import bad_request, not_found
from connectors.square.emulator.knobs import SquareKnobs
from connectors.square.emulator.wire import (
    Clock,
    IdFactory,
    Json,
    decode_cursor,
    encode_cursor,
    fingerprint,
    limit,
    normal_phone,
    obj,
    parse_time,
    rfc3339,
    string_list,
    text,
)
from syncd.sandbox.indexes import Grouped

SEARCH_PAGE = 100
BULK_MAX = 100
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[\d\s().-]+$")
_TEXT_FILTERS = ("email_address", "phone_number", "reference_id")
_TIME_FILTERS = ("created_at", "updated_at")
NAME_FIELDS = ("given_name", "family_name", "company_name", "email_address", "phone_number")


@dataclass(slots=True)  # hundreds of thousands of them: no __dict__ each
class Customer:
    """One customer profile (`CustomerDirectory.wire` gives the API shape)."""

    id: str
    seq: int
    created: datetime
    updated: datetime
    visible_from: datetime
    fields: dict[str, str]
    creation_source: str
    version: int = 0


class CustomerDirectory:
    """Every customer of the seller, in creation order."""

    def __init__(self, knobs: SquareKnobs, clock: Clock, ids: IdFactory) -> None:
        self.knobs = knobs
        self.clock = clock
        self.ids = ids
        self.customers: dict[str, Customer] = {}
        # Customers by E.164 phone and by lower-case email, oldest first: lookups by either
        # read only those customers.
        self._by_phone: Grouped[str | None, Customer] = Grouped()
        self._by_email: Grouped[str, Customer] = Grouped()

    def reset(self) -> None:
        """No customers."""
        self.customers.clear()
        self._by_phone.clear()
        self._by_email.clear()

    def wire(self, customer: Customer) -> Json:
        """The Customer object as the API returns it."""
        precision = self.knobs.timestamp_precision
        return {
            "id": customer.id,
            "created_at": rfc3339(customer.created, precision),
            "updated_at": rfc3339(customer.updated, precision),
            **customer.fields,
            "preferences": {"email_unsubscribed": False},
            "creation_source": customer.creation_source,
            "version": customer.version,
        }

    def create(self, fields: Json, *, source: str = "THIRD_PARTY") -> Customer:
        """A new customer from Create Customer's fields (validated)."""
        clean: dict[str, str] = {}
        for name in (*NAME_FIELDS, "nickname", "reference_id", "note"):
            value = text(fields.get(name), name, max_length=500)
            if value:
                clean[name] = value
        if not any(clean.get(name) for name in NAME_FIELDS):
            raise bad_request(
                "At least one of given_name, family_name, company_name, email_address or "
                "phone_number is required."
            )
        email = clean.get("email_address")
        if email is not None and not _EMAIL.match(email):
            raise bad_request(
                f"Invalid email address `{email}`.",
                code="INVALID_EMAIL_ADDRESS",
                field="email_address",
            )
        phone = clean.get("phone_number")
        digits = len(re.sub(r"\D", "", phone or ""))
        if phone is not None and not (_PHONE.match(phone) and 9 <= digits <= 16):
            raise bad_request(
                f"Invalid phone number `{phone}`.",
                code="INVALID_PHONE_NUMBER",
                field="phone_number",
            )
        now = self.clock()
        customer = Customer(
            id=self.ids.square_id(),
            seq=len(self.customers),
            created=now,
            updated=now,
            visible_from=now + timedelta(seconds=self.knobs.customer_search_lag_seconds),
            fields=clean,
            creation_source=source,
        )
        self.customers[customer.id] = customer
        if phone:
            self._by_phone.add(normal_phone(phone), customer)
        if email:
            self._by_email.add(email.lower(), customer)
        return customer

    def get(self, customer_id: str) -> Customer:
        """One customer; 404 NOT_FOUND when unknown."""
        found = self.customers.get(customer_id)
        if found is None:
            raise not_found("Customer", customer_id)
        return found

    def with_phone(self, phone: str) -> list[Customer]:
        """Customers whose phone is `phone` in E.164, oldest first (no search lag)."""
        wanted = normal_phone(phone)
        if wanted is not None:
            return self._by_phone.get(wanted)
        return [
            c
            for c in self.customers.values()
            if normal_phone(c.fields.get("phone_number")) == wanted
        ]

    def bulk_retrieve(self, body: Json) -> Json:
        """Bulk Retrieve Customers: `{"responses": {id: {"customer"} | {"errors"}}}`."""
        ids = string_list(body.get("customer_ids"), "customer_ids", maximum=BULK_MAX)
        if not ids:
            raise bad_request(
                "Field `customer_ids` must hold 1 to 100 ids.",
                code="MISSING_REQUIRED_PARAMETER",
                field="customer_ids",
            )
        responses: Json = {}
        for customer_id in ids:
            found = self.customers.get(customer_id)
            if found is None:
                responses[customer_id] = not_found("Customer", customer_id).body()
            else:
                responses[customer_id] = {"customer": self.wire(found)}
        return {"responses": responses}

    def search(self, body: Json) -> Json:
        """Search Customers: one page, and a cursor while more remain."""
        query = obj(body.get("query"), "query")
        size = limit(body.get("limit"), default=SEARCH_PAGE, maximum=SEARCH_PAGE)
        query_print = fingerprint(query)
        offset = 0
        if body.get("cursor") is not None:
            offset = int(decode_cursor(body["cursor"], query_print).get("o", 0))
        now = self.clock()
        matches = [
            c
            for c in self._candidates(query.get("filter"))
            if c.visible_from <= now and _matches(c, obj(query.get("filter"), "query.filter"))
        ]
        matches = _sorted(matches, obj(query.get("sort"), "query.sort"))
        page = matches[offset : offset + size]
        answer: Json = {}
        if page:
            answer["customers"] = [self.wire(c) for c in page]
        if offset + size < len(matches):
            answer["cursor"] = encode_cursor({"o": offset + size, "q": query_print})
        if body.get("count") is True:
            answer["count"] = len(matches)
        return answer

    def _candidates(self, filter: Any) -> list[Customer]:
        """The customers `filter` may match: only those with the phone or email when it is
        one exact phone or email (which can fail on no customer), else all of them."""
        if isinstance(filter, dict) and len(filter) == 1:
            ((name, condition),) = filter.items()
            exact = condition.get("exact") if isinstance(condition, dict) else None
            if isinstance(exact, str) and len(condition) == 1:
                if name == "phone_number":
                    return self._by_phone.get(normal_phone(exact))
                if name == "email_address":
                    return self._by_email.get(exact.lower())
        return list(self.customers.values())


def _matches(customer: Customer, filter: Json) -> bool:
    for name, condition in filter.items():
        if name in _TEXT_FILTERS:
            if not _text_matches(
                name, customer.fields.get(name), obj(condition, f"query.filter.{name}")
            ):
                return False
        elif name in _TIME_FILTERS:
            moment = customer.created if name == "created_at" else customer.updated
            if not _in_range(moment, obj(condition, f"query.filter.{name}"), name):
                return False
        else:
            raise bad_request(
                f"Filter `{name}` is not supported by the sandbox.", field=f"query.filter.{name}"
            )
    return True


def _text_matches(name: str, stored: str | None, condition: Json) -> bool:
    exact = text(condition.get("exact"), f"query.filter.{name}.exact")
    fuzzy = text(condition.get("fuzzy"), f"query.filter.{name}.fuzzy")
    if (exact is None) == (fuzzy is None):
        raise bad_request(
            f"Filter `{name}` needs exactly one of `exact` or `fuzzy`.",
            field=f"query.filter.{name}",
        )
    if not stored:
        return False
    if name == "phone_number":
        if exact is not None:
            return normal_phone(exact) == normal_phone(stored)
        return all(t in re.sub(r"\D", "", stored) for t in re.findall(r"\d+", fuzzy or ""))
    if exact is not None:
        return stored.lower() == exact.lower() if name == "email_address" else stored == exact
    tokens = re.findall(r"[a-z0-9]+", stored.lower())
    return all(any(q in t for t in tokens) for q in re.findall(r"[a-z0-9]+", (fuzzy or "").lower()))


def _in_range(moment: datetime, time_range: Json, name: str) -> bool:
    start, end = time_range.get("start_at"), time_range.get("end_at")
    if start is not None and moment < parse_time(start, f"query.filter.{name}.start_at"):
        return False
    return not (end is not None and moment >= parse_time(end, f"query.filter.{name}.end_at"))


def _sorted(customers: list[Customer], sort: Json) -> list[Customer]:
    field = sort.get("field", "DEFAULT")
    order = sort.get("order", "ASC")
    if field not in ("DEFAULT", "CREATED_AT") or order not in ("ASC", "DESC"):
        raise bad_request(
            "Unknown sort field or order.", code="INVALID_ENUM_VALUE", field="query.sort"
        )

    def by_name(c: Customer) -> tuple[Any, ...]:
        given = c.fields.get("given_name", "").lower()
        return (given, c.fields.get("family_name", "").lower(), c.seq)

    def by_creation(c: Customer) -> tuple[Any, ...]:
        return (c.created, c.seq)

    return sorted(
        customers, key=by_name if field == "DEFAULT" else by_creation, reverse=order == "DESC"
    )
