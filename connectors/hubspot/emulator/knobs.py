"""Every setting of the HubSpot emulator, including each behaviour HubSpot does not publish.

The defaults are the emulator's best guess at the real service; tests and the demo flip them
to prove the connector tolerates every plausible answer. The list with reasons is in the
package docstring (`connectors.hubspot.emulator`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from syncd.sandbox.faults import DeliveryFaults, RequestFaults


@dataclass
class HubSpotKnobs:
    """Behaviour switches of one HubSpot emulator; change them with PATCH /_sandbox/knobs."""

    # HubSpot's limits per private app and portal: a rolling 10 s window (100 Free/Starter,
    # 190 Pro/Enterprise), a daily cap (250,000 / 500,000 / 1,000,000) and search at
    # 4 requests per second. 0 turns a limit off.
    requests_per_ten_seconds: int = 100
    daily_limit: int = 250_000
    search_requests_per_second: int = 4
    # The shared per-minute limiter (`syncd.sandbox.gate`), off: HubSpot counts per 10 s.
    requests_per_minute: int = 0
    # 429 Retry-After: None = header omitted (HubSpot documents none), "computed" = seconds
    # until a slot frees, an int = that value.
    retry_after: Literal["computed"] | int | None = None

    # Search: a write reaches the index this many seconds later (the previous version is
    # found until then); no query pages past `search_max_results`.
    search_lag_seconds: float = 0.0
    search_max_results: int = 10_000

    # GET of a contact merged into another: "not_found" (404) or "primary" (the merged
    # record, as HubSpot's UI redirects).
    merged_lookup: Literal["not_found", "primary"] = "not_found"

    # Every API call answers 401 EXPIRED_AUTHENTICATION while this is on.
    token_expired: bool = False

    # Webhooks: events are gathered for `webhook_batch_hold_ms` (at most `webhook_batch_size`
    # per POST); HubSpot waits 5 s for an answer and retries up to 10 times over 24 h
    # (compressed here).
    webhook_batch_hold_ms: int = 200
    webhook_batch_size: int = 100
    webhook_timeout_seconds: float = 5.0
    webhook_retry_gaps_seconds: tuple[float, ...] = (
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        15.0,
        30.0,
        60.0,
        120.0,
        240.0,
    )
    webhook_hold_ms: int = 200  # how long the background sender waits to fill a reorder window

    faults: RequestFaults = field(default_factory=RequestFaults)
    delivery: DeliveryFaults = field(default_factory=DeliveryFaults)
