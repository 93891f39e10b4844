"""Every setting of the Wix emulator, including each behaviour the fact sheet marks (unknown).

The defaults are the emulator's best guess at the real service; tests and the demo flip them
to prove the client tolerates every plausible answer. The list with reasons is in the
package docstring (`syncd.sandbox.wix`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from syncd.sandbox.faults import DeliveryFaults, RequestFaults


@dataclass
class WixKnobs:
    """Behaviour switches of one Wix emulator; change them with `patch` or PATCH /_sandbox/knobs."""

    # Rate limit (per site). Retry-After: "computed" = seconds until a slot frees,
    # an int = always that many seconds, None = header omitted.
    requests_per_minute: int = 200
    retry_after: Literal["computed"] | int | None = "computed"

    # Adjust Points rules marked (unknown).
    adjust_requires_active: bool = True
    adjust_without_revision: Literal["accept", "reject"] = "accept"
    negative_status: int = 400
    negative_code: str = "NEGATIVE_BALANCE"
    stale_revision_code: str = "REVISION_MISMATCH"
    # Transaction type of an `amount` adjust: the enum says ADJUST, the Adjust doc says GIVE.
    amount_adjust_type: Literal["ADJUST", "GIVE"] = "ADJUST"

    # Create Account / Earn Points while the program is not ACTIVE.
    not_active_status: int = 428
    not_active_code: str = "PROGRAM_NOT_ACTIVE"

    # Earn Points: the stored transaction allows 128 characters (the SDK request says 256).
    earn_key_max_length: int = 128

    # Query Accounts list key ("loyaltyAccounts" per the SDK; some docs show "accounts").
    query_list_key: Literal["loyaltyAccounts", "accounts"] = "loyaltyAccounts"

    # Webhooks: "object" puts entities in createdEvent.entity / updatedEvent.currentEntity /
    # actionEvent.body as the JS SDK reads them; "json" sends entityAsJson /
    # currentEntityAsJson / bodyAsJson strings as some docs show.
    webhook_entity_encoding: Literal["object", "json"] = "object"
    webhook_jwt_ttl_seconds: int = 3600
    webhook_timeout_seconds: float = 1.25
    webhook_retry_gaps_seconds: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
    webhook_hold_ms: int = 200  # how long the background sender waits to fill a reorder window

    # OAuth access token lifetime.
    token_ttl_seconds: int = 14400

    faults: RequestFaults = field(default_factory=RequestFaults)
    delivery: DeliveryFaults = field(default_factory=DeliveryFaults)
