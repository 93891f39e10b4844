"""Every setting of the Square emulator, including each behaviour the fact sheet marks (unknown).

The defaults are the emulator's best guess at the real service; tests and the demo flip them
to prove the connector tolerates every plausible answer. The list with reasons is in the
package docstring (`connectors.square.emulator`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from syncd.sandbox.faults import DeliveryFaults, RequestFaults


@dataclass
class SquareKnobs:
    """Behaviour switches of one Square emulator; change them with PATCH /_sandbox/knobs."""

    # Rate limit per access token (Square publishes none). Retry-After: None = header omitted
    # (Square documents none), "computed" = seconds until a slot frees, an int = that value.
    requests_per_minute: int = 1200
    retry_after: Literal["computed"] | int | None = None

    # How long an idempotency key is remembered (Square does not say); None = forever.
    idempotency_key_ttl_seconds: float | None = None

    # Adjust below zero without allow_negative_balance: the SDK says "a BAD_REQUEST error".
    negative_status: int = 400
    negative_code: str = "BAD_REQUEST"

    # Create Loyalty Account for a phone that already has an account.
    duplicate_phone_status: int = 409
    duplicate_phone_code: str = "CONFLICT"

    # Seconds before a new customer shows up in Search Customers (Square: "well under 30 s").
    customer_search_lag_seconds: float = 0.0

    # Timestamps: whole seconds as in the Loyalty docs' examples, or milliseconds.
    timestamp_precision: Literal["s", "ms"] = "s"

    # Every API call answers 401 ACCESS_TOKEN_EXPIRED while this is on.
    token_expired: bool = False

    # Webhooks: Square waits 10 s for a 2xx and retries for about 24 h (compressed here).
    webhook_timeout_seconds: float = 10.0
    webhook_retry_gaps_seconds: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
    webhook_hold_ms: int = 200  # how long the background sender waits to fill a reorder window

    faults: RequestFaults = field(default_factory=RequestFaults)
    delivery: DeliveryFaults = field(default_factory=DeliveryFaults)
