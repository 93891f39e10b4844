"""Emulator of the Square APIs the `square` connector uses: Loyalty and Customers, webhooks.

    emulator = SquareEmulator(access_token="t", seed=0)
    emulator.seed_accounts(5)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(emulator.app),
                                 base_url="http://square") as client: ...
    with serve_in_thread(emulator.app) as server: ...      # syncd.sandbox.server

Shapes and paths follow the fact sheet and the official `squareup` SDK's models (checked by
`tests/conformance/test_squareup_sdk.py`): snake_case fields, RFC 3339 UTC timestamps, errors
as `{"errors": [{category, code, detail, field?}]}`. Routes: `.routes`; admin routes:
`.admin`; webhook format and delivery: `.webhooks`; idempotency: `.idempotency`.

Knobs (`emulator.knobs`, PATCH /_sandbox/knobs). Behaviours the fact sheet marks (unknown),
or that Square does not publish, come first; each default is the emulator's best guess:

    requests_per_minute = 1200        per access token (Square publishes none); 0 = no limit
    retry_after = None                429 RATE_LIMITED carries no Retry-After (none is
                                      documented); "computed" = seconds until a slot frees,
                                      an int = always that value
    idempotency_key_ttl_seconds = None  how long keys are remembered; None = forever
    negative_status = 400             Adjust below zero without allow_negative_balance ...
    negative_code = "BAD_REQUEST"     ... (the SDK: "Square returns a BAD_REQUEST error")
    duplicate_phone_status = 409      Create Loyalty Account for a phone that already has
    duplicate_phone_code = "CONFLICT"   an account
    customer_search_lag_seconds = 0.0 a new customer reaches Search Customers this much later
                                      (Square: "well under 30 seconds")
    timestamp_precision = "s"         "s" (as in the Loyalty docs' examples) or "ms"
    token_expired = False             every API call answers 401 ACCESS_TOKEN_EXPIRED

    webhook_timeout_seconds = 10.0    an answer slower than this counts as failed
    webhook_retry_gaps_seconds = (0.5, 1, 2, 4, 8)  waits between retries (Square: ~24 h)
    webhook_hold_ms = 200             background sender waits this long to fill a reorder window
    faults.latency_ms = 0             added to every API request
    faults.error_rate = 0.0           5xx (faults.error_status = 503, SERVICE_UNAVAILABLE body),
                                      nothing applied
    faults.fail_after_commit_rate = 0.0     applied, then 500 INTERNAL_SERVER_ERROR
    faults.timeout_after_commit_rate = 0.0  applied, then hang faults.hang_seconds (30), then
                                      the normal answer
    delivery.duplicate_rate / drop_rate / reorder_window / delay_ms   webhook delivery faults

Other behaviours chosen where Square is silent: one ACTIVE program (VISIT accrual, one
100-point reward tier) reachable as `main` or by id; Create Loyalty Account links the oldest
customer with the mapping's phone, or creates one (creation_source LOYALTY), and ignores any
customer_id sent (as Square's forum says it does); idempotency keys are scoped per endpoint
and only answers that applied something are remembered; `lifetime_points` counts positive
ACCUMULATE_POINTS and ADJUST_POINTS; a till redemption writes CREATE_REWARD (the points)
then REDEEM_REWARD (0 points); API events carry no location, till events the seller's;
webhooks fire `loyalty.account.created` (API creates), and for every balance change
`loyalty.event.created` then `loyalty.account.updated`; answers carry `x-request-id`; empty
lists are left out of search answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import httpx
from starlette.types import ASGIApp

from connectors.square.emulator.activity import (
    Activity,
    seed_account,
    seed_customer,
    till_activity,
)
from connectors.square.emulator.app import build_app
from connectors.square.emulator.errors import SquareApiError
from connectors.square.emulator.gate import SquareFrontDoor, Stats
from connectors.square.emulator.knobs import SquareKnobs
from connectors.square.emulator.loyalty import LoyaltyState, Notification
from connectors.square.emulator.webhooks import (
    DeliveryAttempt,
    WebhookDispatcher,
    WebhookEvent,
    sign,
)
from connectors.square.emulator.wire import IdFactory, Json
from syncd.sandbox.emulator import (
    ENTITY_IDS,
    EVENT_IDS,
    REQUEST_IDS,
    SandboxEmulator,
    customer_specs,
)
from syncd.sandbox.gate import Gate
from syncd.sandbox.seeding import collector_paused

__all__ = [
    "Activity",
    "DeliveryAttempt",
    "Notification",
    "SquareApiError",
    "SquareEmulator",
    "SquareKnobs",
    "WebhookDispatcher",
    "WebhookEvent",
    "sign",
]


class SquareEmulator(SandboxEmulator[SquareKnobs]):
    """One emulated Square seller with Loyalty set up, reached with one access token.

    `reset()` leaves the seller as first made (same seed, so the same program id) with no
    customers, accounts, events, idempotency keys, webhooks or stats."""

    state: LoyaltyState
    stats: Stats
    webhooks: WebhookDispatcher

    def __init__(
        self,
        access_token: str = "sandbox-square-token",
        *,
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] | None = None,
        seed: int = 0,
        merchant_id: str = "MLSANDBOX0001",
        location_id: str = "LSANDBOX0001",
        webhook_url: str | None = None,
        notification_url: str | None = None,
        signature_key: str = "sandbox-signature-key",
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        knobs: SquareKnobs | None = None,
    ) -> None:
        super().__init__(
            knobs or SquareKnobs(), SquareKnobs, seed=seed, clock=clock, monotonic=monotonic
        )
        self.access_token = access_token
        self._ids = self.id_stream(ENTITY_IDS, IdFactory)
        self._event_ids = self.id_stream(EVENT_IDS, IdFactory)
        self.request_ids = self.id_stream(REQUEST_IDS, IdFactory)
        self.state = LoyaltyState(self.knobs, self.clock, self._ids, location_id=location_id)
        self.stats = Stats(self.state.idempotency)
        door = SquareFrontDoor(self.knobs, lambda: self.access_token)
        self.gate = Gate(self.knobs, door, self.limiter, self.stats)
        self.webhooks = WebhookDispatcher(
            self.knobs,
            self.clock,
            self._event_ids,
            merchant_id=merchant_id,
            signature_key=signature_key,
            url=webhook_url,
            notification_url=notification_url,
            transport=webhook_transport,
        )
        self.state.listeners.append(self.webhooks.on_change)
        self.app: ASGIApp = build_app(self)

    @property
    def program_id(self) -> str:
        """The id of the seller's loyalty program."""
        return self.state.program_id

    # ---- test helpers --------------------------------------------------------------------

    def seed_accounts(self, accounts: int | Iterable[dict[str, Any]]) -> list[Json]:
        """Customers with loyalty accounts: `n` generated ones, or from {email, phone, name,
        balance} dicts (a negative balance is allowed). No webhooks."""
        specs = customer_specs(accounts, existing=len(self.state.accounts), phone="+1415555{:04d}")
        with collector_paused():
            return [
                seed_account(
                    self.state,
                    phone=str(spec.get("phone") or ""),
                    email=spec.get("email"),
                    name=spec.get("name"),
                    balance=int(spec.get("balance", 0)),
                )
                for spec in specs
            ]

    def seed_customer(
        self, *, email: str | None = None, phone: str | None = None, name: str | None = None
    ) -> Json:
        """A customer without a loyalty account, searchable at once."""
        with self.state.lock:
            customer = seed_customer(self.state, email=email, phone=phone, name=name)
            return self.state.customers.wire(customer)

    def activity(
        self, account_id: str, kind: str, points: int, *, reason: str | None = None
    ) -> Activity:
        """A till sale, redemption, dashboard adjustment or expiry (source SQUARE, webhooks)."""
        return till_activity(self.state, account_id, kind, points, reason)

    def accounts(self) -> list[Json]:
        """Every loyalty account, oldest first."""
        return self.state.dump_accounts()

    def account(self, account_id: str) -> Json:
        """One loyalty account (SquareApiError 404 when unknown)."""
        with self.state.lock:
            return self.state.account_wire(self.state.account(account_id))

    def events(self) -> list[Json]:
        """The whole ledger, oldest first."""
        return self.state.dump_events()

    def customers(self) -> list[Json]:
        """Every customer, in creation order (search lag ignored)."""
        with self.state.lock:
            return [self.state.customers.wire(c) for c in self.state.customers.customers.values()]
