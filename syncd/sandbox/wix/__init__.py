"""Emulator of the Wix Loyalty REST API: accounts, transactions, program, contacts, webhooks.

    emulator = WixEmulator(seed=0)
    emulator.activate(); emulator.seed_accounts(5)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(emulator.app),
                                 base_url="http://wix") as client: ...
    with serve_in_thread(emulator.app) as server: ...      # syncd.sandbox.server

Shapes and paths follow Wix's REST docs and its generated JS SDK (`@wix/auto_sdk_*`):
wire names `id`/`createdDate`/`updatedDate`, `revision` as a JSON string, dates ISO-8601 UTC
with milliseconds and Z. Routes: `syncd.sandbox.wix.routes`; admin routes:
`syncd.sandbox.wix.admin`; webhook format: `syncd.sandbox.wix.webhooks`.

Knobs (`emulator.knobs`, PATCH /_sandbox/knobs). Behaviours the fact sheet marks (unknown) come
first; each default is the emulator's best guess:

    retry_after = "computed"          429 Retry-After: seconds until a slot frees (rounded up);
                                      an int = always that value; None = no header
    adjust_requires_active = True     Adjust Points refused while the program is not ACTIVE
    adjust_without_revision = "accept"  Adjust without `revision` applies ("reject" = 400)
    negative_status = 400             a result below zero is refused with this status ...
    negative_code = "NEGATIVE_BALANCE"  ... and this applicationError code
    stale_revision_code = "REVISION_MISMATCH"  code of the 409 "entity has already changed
                                      since the requested revision"
    not_active_status = 428           Create Account / Earn Points while not ACTIVE ...
    not_active_code = "PROGRAM_NOT_ACTIVE"  ... (the status is FAILED_PRECONDITION's)
    amount_adjust_type = "ADJUST"     transaction type of an `amount` adjust ("GIVE": the Adjust
                                      doc's word, absent from the TransactionType enum)
    query_list_key = "loyaltyAccounts"  Query Accounts list key ("accounts" in some docs)
    webhook_entity_encoding = "object"  entity objects as the JS SDK reads them; "json" sends
                                      entityAsJson / currentEntityAsJson / bodyAsJson strings
    earn_key_max_length = 128         idempotencyKey limit (transaction field: 128; the SDK's
                                      request type says 256)

    requests_per_minute = 200         per site; 0 = no limit
    webhook_jwt_ttl_seconds = 3600    exp - iat of the webhook JWT
    webhook_timeout_seconds = 1.25    an answer slower than this counts as failed
    webhook_retry_gaps_seconds = (0.5, 1, 2, 4, 8)  waits between retries (Wix: ~2 days)
    webhook_hold_ms = 200             background sender waits this long to fill a reorder window
    token_ttl_seconds = 14400         OAuth access token lifetime (on the emulator's clock)
    faults.latency_ms = 0             added to every API request
    faults.error_rate = 0.0           5xx (faults.error_status = 503, empty body), not applied
    faults.fail_after_commit_rate = 0.0     applied, then 500 with an empty body
    faults.timeout_after_commit_rate = 0.0  applied, then hang faults.hang_seconds (30), then
                                      the normal answer
    delivery.duplicate_rate = 0.0     webhook sent twice (same event id, same JWT)
    delivery.drop_rate = 0.0          webhook never sent (listed as dropped)
    delivery.reorder_window = 0       hold up to N events, send them shuffled
    delivery.delay_ms = 0             wait before each webhook delivery

Other behaviours chosen where the API is silent: accounts start at revision 1; Query, Search
and Contacts sort by `createdDate` then `id` when no sort is given; `points.balance` = earned
+ adjusted - redeemed - expired; REDEEM and EXPIRE transactions carry negative amounts; Adjust
and Earn `description` may be omitted (if sent: 1..100 characters); a replayed Earn key
returns the first answer (its account snapshot and transactionId) whichever account it
names; Create Account for an unknown contact is 404; `program_updated` uses the instance id
as `entityId`; webhook `iat`/`exp` and `eventTime` come from the emulator's clock; seeding
writes an EARN transaction per seeded balance and fires no webhooks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import httpx
from starlette.types import ASGIApp

from syncd.sandbox.emulator import ENTITY_IDS, EVENT_IDS, SandboxEmulator, customer_specs
from syncd.sandbox.gate import Gate
from syncd.sandbox.seeding import collector_paused
from syncd.sandbox.wix import program
from syncd.sandbox.wix.app import build_app
from syncd.sandbox.wix.auth import Credentials, Gatekeeper
from syncd.sandbox.wix.delivery import DeliveryAttempt, WebhookDispatcher
from syncd.sandbox.wix.errors import WixApiError
from syncd.sandbox.wix.gate import Stats, WixFrontDoor
from syncd.sandbox.wix.knobs import WixKnobs
from syncd.sandbox.wix.model import Change
from syncd.sandbox.wix.site import recalculate, seed_account, site_activity
from syncd.sandbox.wix.state import WixState
from syncd.sandbox.wix.webhooks import EventSigner, SigningKeys, WebhookEvent
from syncd.sandbox.wix.wire import IdFactory

__all__ = [
    "Change",
    "DeliveryAttempt",
    "WebhookDispatcher",
    "WebhookEvent",
    "WixApiError",
    "WixEmulator",
    "WixKnobs",
    "WixState",
]


class WixEmulator(SandboxEmulator[WixKnobs]):
    """One emulated Wix site with the Loyalty app installed and one OAuth app."""

    state: WixState
    stats: Stats
    webhooks: WebhookDispatcher

    def __init__(
        self,
        site_id: str = "sandbox-site",
        api_key: str = "sandbox-api-key",
        app_id: str = "sandbox-app-id",
        app_secret: str = "sandbox-app-secret",
        instance_id: str = "sandbox-instance-id",
        clock: Callable[[], datetime] | None = None,
        seed: int = 0,
        *,
        monotonic: Callable[[], float] | None = None,
        webhook_url: str | None = None,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        private_key_pem: str | None = None,
        knobs: WixKnobs | None = None,
    ) -> None:
        super().__init__(knobs or WixKnobs(), WixKnobs, seed=seed, clock=clock, monotonic=monotonic)
        self.credentials = Credentials(site_id, api_key, app_id, app_secret, instance_id)
        self._ids = self.id_stream(ENTITY_IDS, IdFactory)
        self._event_ids = self.id_stream(EVENT_IDS, IdFactory)
        self.state = WixState(
            self.knobs, self.clock, self._ids, app_id=app_id, program_id=instance_id
        )
        self.gatekeeper = Gatekeeper(self.credentials, self.clock)
        self.stats = Stats()
        self.gate = Gate(self.knobs, WixFrontDoor(self.gatekeeper), self.limiter, self.stats)
        self.keys = SigningKeys(private_key_pem)
        signer = EventSigner(
            self.keys,
            self.knobs,
            self._event_ids,
            instance_id=instance_id,
            site_id=site_id,
            app_id=app_id,
        )
        self.webhooks = WebhookDispatcher(
            self.knobs, signer.sign, self.clock, url=webhook_url, transport=webhook_transport
        )
        self.state.listeners.append(self.webhooks.on_change)
        self.app: ASGIApp = build_app(self)

    @property
    def public_key_pem(self) -> str:
        """The PEM public key that verifies this emulator's webhooks."""
        return self.keys.public_key_pem

    def reset(self, *, knobs: bool = False) -> None:
        """An empty site again (program DRAFT, no tokens); `knobs=True` also restores default
        knobs."""
        super().reset(knobs=knobs)
        self.gatekeeper.reset()

    def activate(self) -> dict[str, Any]:
        """Set the program ACTIVE (fires program_updated when it changes)."""
        return self.set_program_status("ACTIVE")

    def set_program_status(self, status: str) -> dict[str, Any]:
        """Set the program DRAFT, ACTIVE or PAUSED from the dashboard (program_updated)."""
        return program.set_status(self.state, status, origin="site")

    def seed_accounts(self, accounts: int | Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create contacts with accounts: `n` generated ones, or from {email, name, phone,
        countryCode, balance} dicts. No program check, no webhooks; balances become EARN rows."""
        specs = customer_specs(
            accounts,
            existing=len(self.state.accounts),
            phone="(415) 555-{:04d}",
            extra={"countryCode": "US"},
        )
        with collector_paused():
            return [
                seed_account(
                    self.state,
                    email=spec.get("email"),
                    name=spec.get("name"),
                    phone=spec.get("phone"),
                    country_code=spec.get("countryCode"),
                    balance=int(spec.get("balance", 0)),
                )
                for spec in specs
            ]

    def activity(
        self, account_id: str, kind: str, amount: int, description: str | None = None
    ) -> tuple[dict[str, Any], str]:
        """A site-side change (redeem, earn, expire, adjust); returns (account, transactionId)."""
        return site_activity(self.state, account_id, kind, amount, description)

    def recalculate(self) -> int:
        """Fire the periodic `account_updated` noise for every account; returns how many."""
        return recalculate(self.state)
