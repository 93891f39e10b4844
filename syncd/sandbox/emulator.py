"""What every vendor emulator is made of, besides its API: one seed for every random sequence,
the clocks, the knobs, the rate limiter, request stats and the webhook dispatcher.

    class WixEmulator(SandboxEmulator[WixKnobs]):
        def __init__(self, ..., seed=0, clock=None, monotonic=None, knobs=None):
            super().__init__(knobs or WixKnobs(), WixKnobs, seed=seed, clock=clock,
                             monotonic=monotonic)
            self._ids = self.id_stream(ENTITY_IDS, IdFactory)
            self.state, self.stats, self.webhooks, self.app = ...

`reseed(seed)` restarts every sequence (ids, fault and delivery-fault rolls) from one seed;
`reset()` empties the emulator (optionally restoring default knobs) and replays from the same
seed. `customer_specs` makes the same made-up customers in every emulator.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from starlette.types import ASGIApp

from syncd.clock import utcnow
from syncd.sandbox.delivery import DeliveryKnobs, WebhookDispatcher
from syncd.sandbox.faults import SlidingWindowLimiter
from syncd.sandbox.gate import GateKnobs
from syncd.sandbox.ids import IdFactory
from syncd.sandbox.stats import RequestStats
from syncd.sandbox.wire import Clock

# Offsets from the seed of each random sequence, the same in every emulator.
FAULTS = 0  # knobs.faults.rng
ENTITY_IDS = 0
EVENT_IDS = 1
DELIVERY = 2  # knobs.delivery.rng
REQUEST_IDS = 3

_FIRST = ("Ann", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun")
_LAST = ("Lee", "Moss", "Ng", "Oak", "Park", "Quinn", "Ross", "Sato", "Tran", "Upton")


class EmulatorKnobs(GateKnobs, DeliveryKnobs, Protocol):
    """The knobs every emulator has: rate limit, request faults, webhook delivery."""


class Resettable(Protocol):
    """Something `reset()` empties (the emulator's model)."""

    def reset(self) -> None: ...


KnobsT = TypeVar("KnobsT", bound=EmulatorKnobs)
IdsT = TypeVar("IdsT", bound=IdFactory)


class SandboxEmulator(Generic[KnobsT]):
    """The vendor-neutral half of an emulator; a vendor subclass adds its model and routes.

    The subclass registers its id sequences with `id_stream`, then sets `state` (its model),
    `stats`, `webhooks` and `app`; `reset` empties those, and the subclass extends it for
    anything else it keeps (Wix: issued OAuth tokens).
    """

    state: Resettable
    stats: RequestStats
    webhooks: WebhookDispatcher[Any, Any]
    app: ASGIApp

    def __init__(
        self,
        knobs: KnobsT,
        defaults: Callable[[], KnobsT],
        *,
        seed: int,
        clock: Clock | None,
        monotonic: Callable[[], float] | None,
    ) -> None:
        self.seed = seed
        self.clock: Clock = clock or utcnow
        if monotonic is None:
            monotonic = (lambda: self.clock().timestamp()) if clock else time.monotonic
        self.knobs = knobs
        self._defaults = defaults
        self._id_streams: list[tuple[int, IdFactory]] = []
        self.limiter = SlidingWindowLimiter(knobs.requests_per_minute, monotonic)
        self.reseed(seed)

    def id_stream(self, offset: int, kind: Callable[[int], IdsT]) -> IdsT:
        """A new id factory seeded at `seed + offset`, restarted by every `reseed`."""
        ids = kind(self.seed + offset)
        self._id_streams.append((offset, ids))
        return ids

    def reseed(self, seed: int) -> None:
        """Restart every random sequence (ids, faults) from `seed`."""
        self.seed = seed
        for offset, ids in self._id_streams:
            ids.reseed(seed + offset)
        self.knobs.faults.rng = random.Random(seed + FAULTS)
        self.knobs.delivery.rng = random.Random(seed + DELIVERY)

    def reset(self, *, knobs: bool = False) -> None:
        """Empty again, replaying from the same seed; `knobs=True` also restores default
        knobs (otherwise they are kept)."""
        if knobs:
            for name, value in vars(self._defaults()).items():
                setattr(self.knobs, name, value)
        self.reseed(self.seed)
        self.state.reset()
        self.webhooks.reset()
        self.limiter.reset()
        self.stats.reset()


def customer_specs(
    accounts: int | Iterable[dict[str, Any]],
    *,
    existing: int,
    phone: str,
    extra: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Seeding specs: `accounts` as given, or that many made-up customers numbered after the
    `existing` ones, each {name, email, phone (`phone` formatted with the number), balance}
    plus `extra`; the same customers in every emulator and every run."""
    if not isinstance(accounts, int):
        return list(accounts)
    return [
        {
            "name": f"{_FIRST[i % 10]} {_LAST[(i // 10) % 10]}",
            "email": f"customer{i + 1}@example.com",
            "phone": phone.format(i + 1),
            **(extra or {}),
            "balance": (i * 37) % 500,
        }
        for i in range(existing, existing + accounts)
    ]
