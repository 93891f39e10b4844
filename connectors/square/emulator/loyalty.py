"""The Square Loyalty model without HTTP: one program, accounts, the events ledger.

Every balance change goes through `record`, which updates the account, appends a LoyaltyEvent
(`source` LOYALTY_API for API callers, SQUARE for the till and the dashboard) and tells the
listeners (the webhook dispatcher): `loyalty.event.created`, then `loyalty.account.updated`.
Refusals raise `SquareApiError`. One re-entrant lock makes each call atomic, so test helpers
in one thread and the served app in another share the model safely.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.square.emulator.customers import Customer, CustomerDirectory
from connectors.square.emulator.errors import bad_request, not_found
from connectors.square.emulator.idempotency import IdempotencyStore
from connectors.square.emulator.keyset import CreationOrder, Position
from connectors.square.emulator.knobs import SquareKnobs
from connectors.square.emulator.wire import Clock, IdFactory, Json, parse_time, refuse, rfc3339
from syncd.sandbox.indexes import Grouped

REASON_MAX = 3500
API = "LOYALTY_API"
SQUARE = "SQUARE"


@dataclass(frozen=True)
class Notification:
    """One change for the webhook dispatcher: its event type and the object as it now is."""

    event_type: str  # e.g. "loyalty.account.updated"
    data_type: str  # "loyalty_account" | "loyalty_event"
    object_id: str
    object: Json  # {"loyalty_account": {...}} | {"loyalty_event": {...}}
    at: datetime


@dataclass(slots=True)  # hundreds of thousands of them: no __dict__ each
class Account:
    """A loyalty account (`LoyaltyState.account_wire` gives the API shape)."""

    id: str
    seq: int
    customer_id: str
    phone: str
    mapping_id: str
    created: datetime
    updated: datetime
    enrolled: datetime | None = None
    balance: int = 0
    lifetime_points: int = 0


@dataclass(slots=True)  # hundreds of thousands of them: no __dict__ each
class LedgerEvent:
    """A LoyaltyEvent; `detail` is the type's object (e.g. adjust_points)."""

    id: str
    seq: int
    type: str
    created: datetime
    account_id: str
    source: str
    detail: Json
    location_id: str | None = None
    points: int = 0  # the balance change it made (0 for REDEEM_REWARD)

    @property
    def detail_key(self) -> str:
        return self.type.lower()


class LoyaltyState:
    """The seller: one ACTIVE program, customers, loyalty accounts and the events ledger."""

    def __init__(
        self, knobs: SquareKnobs, clock: Clock, ids: IdFactory, *, location_id: str
    ) -> None:
        self.knobs = knobs
        self.clock = clock
        self.ids = ids
        self.location_id = location_id
        self.lock = threading.RLock()
        self.listeners: list[Callable[[Notification], None]] = []
        self.customers = CustomerDirectory(knobs, clock, ids)
        self.idempotency = IdempotencyStore(knobs, clock)
        self.accounts: dict[str, Account] = {}
        self.events: list[LedgerEvent] = []
        # Indexes, so that no API call reads every account or event.
        self.account_order: CreationOrder[Account] = CreationOrder(position)
        self.account_by_phone: dict[str, Account] = {}
        self.accounts_by_customer: Grouped[str, Account] = Grouped()
        self.event_order: CreationOrder[LedgerEvent] = CreationOrder(position)
        self.events_by_account: Grouped[str, LedgerEvent] = Grouped()
        self._new_program()

    def _new_program(self) -> None:
        self.program_id = self.ids.uuid()
        self.program_created = self.clock()
        self.reward_tier_id = self.ids.uuid()

    def reset(self) -> None:
        """A fresh seller (the program is made again from the id sequence), nothing in it."""
        with self.lock:
            self.customers.reset()
            self.idempotency.reset()
            self.accounts.clear()
            self.events.clear()
            self.account_order.clear()
            self.account_by_phone.clear()
            self.accounts_by_customer.clear()
            self.event_order.clear()
            self.events_by_account.clear()
            self._new_program()

    # ---- wire shapes ---------------------------------------------------------------------

    def stamp(self, moment: datetime) -> str:
        """A timestamp as the API shows it (precision from the knobs)."""
        return rfc3339(moment, self.knobs.timestamp_precision)

    def program_wire(self) -> Json:
        """The LoyaltyProgram: ACTIVE, one visit rule, one reward tier."""
        created = self.stamp(self.program_created)
        return {
            "id": self.program_id,
            "status": "ACTIVE",
            "reward_tiers": [
                {
                    "id": self.reward_tier_id,
                    "points": 100,
                    "name": "$5 off your order",
                    "created_at": created,
                    "pricing_rule_reference": {
                        "object_id": "SANDBOXPRICINGRULE",
                        "catalog_version": 1,
                    },
                }
            ],
            "terminology": {"one": "Point", "other": "Points"},
            "location_ids": [self.location_id],
            "created_at": created,
            "updated_at": created,
            "accrual_rules": [
                {"accrual_type": "VISIT", "points": 1, "visit_data": {"tax_mode": "BEFORE_TAX"}}
            ],
        }

    def account_wire(self, account: Account) -> Json:
        """The LoyaltyAccount as the API returns it."""
        wire: Json = {
            "id": account.id,
            "program_id": self.program_id,
            "balance": account.balance,
            "lifetime_points": account.lifetime_points,
            "customer_id": account.customer_id,
            "created_at": self.stamp(account.created),
            "updated_at": self.stamp(account.updated),
            "mapping": {
                "id": account.mapping_id,
                "created_at": self.stamp(account.created),
                "phone_number": account.phone,
            },
        }
        if account.enrolled is not None:
            wire["enrolled_at"] = self.stamp(account.enrolled)
        return wire

    def event_wire(self, event: LedgerEvent) -> Json:
        """The LoyaltyEvent as the API returns it."""
        wire: Json = {
            "id": event.id,
            "type": event.type,
            "created_at": self.stamp(event.created),
            event.detail_key: copy.deepcopy(event.detail),
            "loyalty_account_id": event.account_id,
            "source": event.source,
        }
        if event.location_id:
            wire["location_id"] = event.location_id
        return wire

    # ---- reading -------------------------------------------------------------------------

    def account(self, account_id: str) -> Account:
        """The account; 404 NOT_FOUND when unknown."""
        found = self.accounts.get(account_id)
        if found is None:
            raise not_found("Loyalty account", account_id)
        return found

    def program_by(self, program_id: str) -> Json:
        """The program by id or the keyword `main`; 404 for any other id."""
        if program_id not in ("main", self.program_id):
            raise not_found("Loyalty program", program_id)
        return self.program_wire()

    # ---- accounts ------------------------------------------------------------------------

    def create_account(
        self,
        program_id: str,
        phone: str,
        *,
        enrolled_at: str | None = None,
        seeding: bool = False,
        customer: Customer | None = None,
    ) -> Account:
        """An account mapped to `phone`, linked to the oldest customer with that phone (one is
        created when none has it, as Square does). `seeding` fires no webhook."""
        with self.lock:
            if program_id != self.program_id:
                raise not_found("Loyalty program", program_id)
            if phone in self.account_by_phone:
                raise refuse(
                    self.knobs.duplicate_phone_status,
                    self.knobs.duplicate_phone_code,
                    f"A loyalty account is already mapped to {phone}.",
                    "loyalty_account.mapping.phone_number",
                )
            enrolled = (
                parse_time(enrolled_at, "loyalty_account.enrolled_at") if enrolled_at else None
            )
            if customer is None:
                linked = self.customers.with_phone(phone)
                customer = (
                    linked[0]
                    if linked
                    else self.customers.create({"phone_number": phone}, source="LOYALTY")
                )
            now = self.clock()
            account = Account(
                id=self.ids.uuid(),
                seq=len(self.accounts),
                customer_id=customer.id,
                phone=phone,
                mapping_id=self.ids.uuid(),
                created=now,
                updated=now,
                enrolled=enrolled or (now if seeding else None),
            )
            self.accounts[account.id] = account
            self.account_order.add(account)
            self.account_by_phone[phone] = account
            self.accounts_by_customer.add(customer.id, account)
            if not seeding:
                self.notify("loyalty.account.created", account)
            return account

    def adjust(
        self,
        account_id: str,
        points: int,
        reason: str | None,
        *,
        allow_negative: bool,
        source: str = API,
    ) -> LedgerEvent:
        """Adjust Points: ADJUST_POINTS of `points` (a negative result only when allowed)."""
        if points == 0:
            raise bad_request("`points` must not be 0.", field="adjust_points.points")
        if reason is not None and len(reason) > REASON_MAX:
            raise bad_request(
                f"`reason` must be at most {REASON_MAX} characters.",
                code="VALUE_TOO_LONG",
                field="adjust_points.reason",
            )
        with self.lock:
            account = self.account(account_id)
            if points < 0 and account.balance + points < 0 and not allow_negative:
                raise refuse(
                    self.knobs.negative_status,
                    self.knobs.negative_code,
                    f"Adjusting by {points} would make the balance {account.balance + points}; "
                    "set allow_negative_balance to allow it.",
                    "adjust_points.points",
                )
            detail: Json = {"loyalty_program_id": self.program_id, "points": points}
            if reason is not None:
                detail["reason"] = reason
            location = self.location_id if source == SQUARE else None
            return self.record(account, "ADJUST_POINTS", points, detail, source, location)

    def record(
        self,
        account: Account,
        event_type: str,
        points: int,
        detail: Json,
        source: str,
        location_id: str | None,
        *,
        emit: bool = True,
    ) -> LedgerEvent:
        """Apply one balance change: account, ledger, then the webhooks."""
        with self.lock:
            now = self.clock()
            account.balance += points
            if points > 0 and event_type in ("ACCUMULATE_POINTS", "ADJUST_POINTS"):
                account.lifetime_points += points
            if event_type == "ACCUMULATE_POINTS" and account.enrolled is None:
                account.enrolled = now
            account.updated = now
            event = LedgerEvent(
                id=self.ids.uuid(),
                seq=len(self.events),
                type=event_type,
                created=now,
                account_id=account.id,
                source=source,
                detail=detail,
                location_id=location_id,
                points=points,
            )
            self.events.append(event)
            self.event_order.add(event)
            self.events_by_account.add(account.id, event)
            if emit:
                self.notify("loyalty.event.created", event)
                if points:
                    self.notify("loyalty.account.updated", account)
            return event

    def notify(self, event_type: str, subject: Account | LedgerEvent) -> None:
        """Tell the listeners about a change, with the object as it now is."""
        if isinstance(subject, Account):
            data_type, obj = "loyalty_account", {"loyalty_account": self.account_wire(subject)}
        else:
            data_type, obj = "loyalty_event", {"loyalty_event": self.event_wire(subject)}
        change = Notification(event_type, data_type, subject.id, obj, self.clock())
        for listener in list(self.listeners):
            listener(change)

    def dump_accounts(self) -> list[Json]:
        """Every account, oldest first, wire-shaped."""
        with self.lock:
            return [self.account_wire(a) for a in self.accounts.values()]

    def dump_events(self) -> list[Json]:
        """The whole ledger, oldest first, wire-shaped."""
        with self.lock:
            return [self.event_wire(e) for e in self.events]


def position(record: Account | LedgerEvent) -> Position:
    """Where a record sorts in searches: (created, seq)."""
    return record.created, record.seq


def require_key(body: Json) -> str:
    """The request's idempotency_key (1..128 characters)."""
    key: Any = body.get("idempotency_key")
    if key is None or key == "":
        raise bad_request(
            "Field `idempotency_key` is required.",
            code="MISSING_REQUIRED_PARAMETER",
            field="idempotency_key",
        )
    if not isinstance(key, str):
        raise bad_request("Expected a string.", code="EXPECTED_STRING", field="idempotency_key")
    if len(key) > 128:
        raise bad_request(
            "`idempotency_key` must be at most 128 characters.",
            code="VALUE_TOO_LONG",
            field="idempotency_key",
        )
    return key
