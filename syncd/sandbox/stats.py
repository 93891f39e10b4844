"""Request counters every emulator keeps for its admin `stats` route.

The gate counts each API request by route name, each answer by status, each injected fault by
kind, and each 429. A vendor subclasses `RequestStats` to name the 429 counter in its own
casing (`rate_limited_key`) or to count more (Square counts `Square-Version` values).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar


class RequestStats:
    """Counters of API requests, answers, faults and rate-limit refusals."""

    rate_limited_key: ClassVar[str] = "rate_limited"  # its key in `dump()`

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.rate_limited = 0

    def count_request(self, name: str, headers: Mapping[str, str]) -> None:
        """One request to route `name` (e.g. "GET /v2/customers/{customer_id}")."""
        self.requests[name] += 1

    def count_status(self, status: int) -> None:
        """One answer with `status`."""
        self.statuses[str(status)] += 1

    def dump(self) -> dict[str, Any]:
        """JSON-ready counters."""
        return {
            "requests": dict(self.requests),
            "statuses": dict(self.statuses),
            self.rate_limited_key: self.rate_limited,
            "faults": dict(self.faults),
        }

    def reset(self) -> None:
        """Zero every counter."""
        self.requests.clear()
        self.statuses.clear()
        self.faults.clear()
        self.rate_limited = 0
