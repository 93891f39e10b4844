"""Emulator of the HubSpot CRM APIs the `hubspot` connector uses: contact properties, contacts,
search, batches, webhooks.

    emulator = HubSpotEmulator(access_token="t", seed=0)
    emulator.seed_contacts(5)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(emulator.app),
                                 base_url="http://hubspot") as client: ...
    with serve_in_thread(emulator.app) as server: ...      # syncd.sandbox.server

Shapes and paths follow the fact sheet and the official `hubspot-api-client` models (checked
by `tests/conformance/test_hubspot_sdk.py`): camelCase fields, every contact value a string,
times ISO 8601 with milliseconds and Z, errors as `{"status": "error", "message",
"correlationId", "category", "errors"?}`. Routes: `.routes`; search: `.search`; batches:
`.batch`; the model: `.state` and `.contacts`; webhook format, signatures and delivery:
`.webhooks`; rate limits and auth: `.gate`.

Knobs (`emulator.knobs`, PATCH /_sandbox/knobs). Each default is the emulator's best guess:

    requests_per_ten_seconds = 100   rolling 10 s window per portal (Free/Starter; 190 on
                                     Pro/Enterprise); 0 = no limit
    daily_limit = 250000             requests per UTC day (HubSpot's day is the portal's
                                     time zone); 0 = no limit
    search_requests_per_second = 4   search only, on top of the two above
    requests_per_minute = 0          the shared per-minute limiter, off
    retry_after = None               429s carry no Retry-After (HubSpot documents none);
                                     "computed" = seconds until a slot frees, an int = that
    search_lag_seconds = 0.0         a write reaches search this much later (the previous
                                     version is found until then); HubSpot: "a few seconds"
    search_max_results = 10000       no query pages past this: asking for `after` >= it is a
                                     400 VALIDATION_ERROR
    merged_lookup = "not_found"      GET of a contact merged into another: 404 (a guess; the
                                     real API may answer the merged record: "primary")
    token_expired = False            every API call answers 401 EXPIRED_AUTHENTICATION
    webhook_batch_hold_ms = 200      events wait this long for others to share a POST
    webhook_batch_size = 100         at most this many events per POST
    webhook_timeout_seconds = 5.0    an answer slower than this counts as failed (HubSpot: 5 s)
    webhook_retry_gaps_seconds = (0.5, 1, 2, 4, 8, 15, 30, 60, 120, 240)  ten retries
                                     (HubSpot: up to 10 over 24 h)
    webhook_hold_ms = 200            background sender waits this long to fill a reorder window
    faults.latency_ms = 0            added to every API request
    faults.error_rate = 0.0          5xx (faults.error_status = 503, INTERNAL_ERROR body),
                                     nothing applied
    faults.fail_after_commit_rate = 0.0     applied, then 500
    faults.timeout_after_commit_rate = 0.0  applied, then hang faults.hang_seconds (30), then
                                     the normal answer
    delivery.duplicate_rate / drop_rate / reorder_window / delay_ms   webhook delivery faults,
                                     acting on whole POSTs (batches)

Other behaviours chosen where HubSpot is silent or unclear: contact ids are numeric strings
rising by a seeded step of 1..20 from 1001; the list's `after` cursor is the next contact's
id; a read always shows createdate, hs_object_id and lastmodifieddate, a requested property
without a value as null, and ignores unknown names; a write of the value a property already
holds is no change (no history, no webhook, `lastmodifieddate` stays); numbers are stored
normalized ("120.0" -> "120"), emails in lower case; an empty string clears a value; API
writes have history sourceType INTEGRATION (sourceId the app id) and webhook changeSource
INTEGRATION, UI edits (`set_points`, `edit`, `merge`, `archive`) CRM_UI with sourceId
"userId:7100001", seeded values IMPORT; a created contact fires contact.creation, then a
propertyChange per subscribed value set; a merge keeps the primary's id and values (its points
included), fills only the properties it lacks from the secondary, answers the secondary's
email on `idProperty=email` lookups, removes the secondary from lists and search and fires only
contact.merge (newObjectId = the primary's id); a unique-value clash is 409 CONFLICT; batch
update/upsert report unknown ids and per-input refusals as a 207 but refuse the whole batch
(400) for an invalid value; 429s use policyName SECONDLY for both the 10 s and the search
limit (HubSpot may also say TEN_SECONDLY_ROLLING); injected 5xx bodies have category
INTERNAL_ERROR; answers carry the rate-limit headers even on 401 and 429.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
from starlette.types import ASGIApp

from connectors.hubspot.emulator.app import build_app
from connectors.hubspot.emulator.errors import HubSpotApiError
from connectors.hubspot.emulator.gate import HubSpotFrontDoor, HubSpotGate, RateLimits
from connectors.hubspot.emulator.knobs import HubSpotKnobs
from connectors.hubspot.emulator.state import IMPORT, UI, ContactChange, ContactState
from connectors.hubspot.emulator.webhooks import (
    DeliveryAttempt,
    WebhookBatch,
    WebhookDispatcher,
    sign_v3,
    signed_uri,
)
from connectors.hubspot.emulator.wire import IdFactory, Json
from syncd.sandbox.emulator import (
    ENTITY_IDS,
    EVENT_IDS,
    REQUEST_IDS,
    SandboxEmulator,
    customer_specs,
)
from syncd.sandbox.stats import RequestStats

__all__ = [
    "ContactChange",
    "DeliveryAttempt",
    "HubSpotApiError",
    "HubSpotEmulator",
    "HubSpotKnobs",
    "WebhookBatch",
    "WebhookDispatcher",
    "sign_v3",
    "signed_uri",
]


class HubSpotEmulator(SandboxEmulator[HubSpotKnobs]):
    """One emulated HubSpot portal with one private app, reached with one access token.

    `reset()` leaves the portal as first made: no contacts, the standard properties (and the
    points property if `define_points_property`), no webhooks, stats or counted requests."""

    state: ContactState
    stats: RequestStats
    webhooks: WebhookDispatcher

    def __init__(
        self,
        access_token: str = "sandbox-hubspot-token",
        *,
        client_secret: str = "sandbox-hubspot-secret",
        seed: int = 0,
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] | None = None,
        portal_id: int = 62515,
        app_id: int = 1160452,
        webhook_url: str | None = None,
        target_url: str | None = None,
        points_property: str = "wix_loyalty_points",
        define_points_property: bool = True,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        knobs: HubSpotKnobs | None = None,
    ) -> None:
        super().__init__(
            knobs or HubSpotKnobs(), HubSpotKnobs, seed=seed, clock=clock, monotonic=monotonic
        )
        if monotonic is None:
            monotonic = (lambda: self.clock().timestamp()) if clock else time.monotonic
        self.access_token = access_token
        self.client_secret = client_secret
        self.portal_id = portal_id
        self.app_id = app_id
        self.points_property = points_property
        self._ids = self.id_stream(ENTITY_IDS, IdFactory)
        self._event_ids = self.id_stream(EVENT_IDS, IdFactory)
        self.request_ids = self.id_stream(REQUEST_IDS, IdFactory)
        self.state = ContactState(
            self.knobs,
            self.clock,
            self._ids,
            app_id=app_id,
            points_property=points_property,
            define_points_property=define_points_property,
        )
        self.stats = RequestStats()
        self.limits = RateLimits(self.knobs, self.clock, monotonic, self.stats)
        door = HubSpotFrontDoor(self.knobs, lambda: self.access_token, self.limits)
        self.gate = HubSpotGate(self.knobs, door, self.limiter, self.stats)
        self.webhooks = WebhookDispatcher(
            self.knobs,
            self.clock,
            self._event_ids,
            portal_id=portal_id,
            app_id=app_id,
            client_secret=client_secret,
            points_property=points_property,
            url=webhook_url,
            target_url=target_url,
            transport=webhook_transport,
        )
        self.state.listeners.append(self.webhooks.notify)
        self.app: ASGIApp = build_app(self)

    def reset(self, *, knobs: bool = False) -> None:
        """Empty again, replaying from the same seed (see the class docstring)."""
        super().reset(knobs=knobs)
        self.limits.reset()

    # ---- test helpers --------------------------------------------------------------------

    def seed_contacts(self, specs: int | Iterable[dict[str, Any]]) -> list[Json]:
        """Contacts that were already there: `n` generated ones, or from {email, phone, name,
        balance} dicts; `balance` goes to the points property (ignored while it is not
        defined). History source IMPORT; no webhooks."""
        with self.state.lock:
            existing = len(self.state.contacts)
            made = []
            for spec in customer_specs(specs, existing=existing, phone="+1617555{:04d}"):
                first, _, last = str(spec.get("name") or "").partition(" ")
                values: dict[str, Any] = {
                    "email": spec.get("email"),
                    "phone": spec.get("phone"),
                    "firstname": first,
                    "lastname": last,
                }
                balance = spec.get("balance")
                if balance is not None and self.points_property in self.state.properties.defined:
                    values[self.points_property] = str(int(balance))
                stored = self.state.properties.normalize(values)
                made.append(self.state.create(stored, IMPORT, notify=False).wire())
            return made

    def contact(self, contact_id: str) -> Json:
        """One contact with every value (HubSpotApiError 404 when unknown, archived or merged
        away)."""
        with self.state.lock:
            return self.state.find(contact_id).wire()

    def contacts(self) -> list[Json]:
        """Every live contact with every value, lowest id first (search lag ignored)."""
        with self.state.lock:
            return [c.wire() for c in self.state.live()]

    def points(self, contact_id: str) -> int | None:
        """The points property as a number (a fraction cut off), None when it has no value."""
        with self.state.lock:
            value = self.state.find(contact_id).values.get(self.points_property)
        return None if value is None else int(Decimal(value))

    def set_points(self, contact_id: str, value: int) -> None:
        """An operator sets the points in HubSpot's UI: a CRM_UI history entry,
        `lastmodifieddate` moves, contact.propertyChange fires (nothing if unchanged)."""
        self.edit(contact_id, {self.points_property: str(value)})

    def add_points(self, contact_id: str, delta: int) -> int:
        """`set_points(current + delta)` (no value counts as 0); returns the new value."""
        with self.state.lock:
            value = (self.points(contact_id) or 0) + delta
            self.set_points(contact_id, value)
            return value

    def edit(self, contact_id: str, properties: Any) -> None:
        """Any edit in HubSpot's UI (values as the API takes them; "" clears one)."""
        with self.state.lock:
            values = self.state.properties.normalize(properties)
            self.state.update(self.state.find(contact_id), values, UI)

    def merge(self, primary_id: str, secondary_id: str) -> None:
        """Someone merges `secondary_id` into `primary_id` in HubSpot (contact.merge)."""
        with self.state.lock:
            primary = self.state.find(primary_id)
            self.state.merge(primary, self.state.find(secondary_id), UI)

    def archive(self, contact_id: str) -> None:
        """Someone deletes a contact in HubSpot (contact.deletion)."""
        with self.state.lock:
            self.state.archive(self.state.find(contact_id), UI)

    def history(self, contact_id: str, property_name: str) -> list[Json]:
        """A property's history, newest first, as `propertiesWithHistory` shows it."""
        with self.state.lock:
            contact = self.state.find(contact_id)
            return [e.wire() for e in reversed(contact.history.get(property_name, []))]
