"""The world syncd lives in during a chaos run: both emulators, the shop's customers, what they
do (the workload), and the faults the vendors inflict (the fault plan).

Every change is applied at its source, as a customer or shop owner would make it, under the
emulator's own lock: the points it really moved (an expiry takes at most the balance) are
added to that customer's ledger of changes, which is what syncd is checked against. Nothing
here asks syncd anything.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from connectors.square.emulator import SquareEmulator
from syncd.sandbox.errors import ApiError
from syncd.sandbox.faults import DeliveryFaults
from syncd.sandbox.wix import WixEmulator

SIGNATURE_KEY = "chaos-signature-key"
KINDS = {"equal": 0.55, "different": 0.25, "wix_only": 0.10, "square_only": 0.10}
MAX_START = 500

# What customers and owners do, and how often (relative weights).
OPERATIONS = {
    "online_earn": 17,
    "online_redeem": 12,
    "wix_correction": 5,
    "wix_expiry": 3,
    "till_sale": 20,
    "till_redeem": 10,
    "square_correction": 6,
    "square_expiry": 3,
    "double_spend": 6,  # a redemption on both sides between two syncs
    "new_online": 4,
    "new_at_till": 4,
}


@dataclass
class Customer:
    """One person, their account on each side (None: not there yet, or syncd creates it), the
    balance they started with once the backfill agreed, and every change made since."""

    number: int
    kind: str
    email: str
    phone: str  # E.164
    wix_id: str | None = None
    square_id: str | None = None
    start: int = 0
    wix_changes: int = 0
    square_changes: int = 0

    @property
    def expected(self) -> int:
        """The balance both sides must end with (before any held or clamped points)."""
        return self.start + self.wix_changes + self.square_changes

    @property
    def wix_phone(self) -> str:
        """The phone as a Wix contact form takes it: (415) 555-0123."""
        digits = self.phone.removeprefix("+1")
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"


def phone_of(number: int) -> str:
    """A distinct US phone per customer number."""
    area = 415 + 213 * (number // 10_000)  # 415, 628, 841, ...
    return f"+1{area}555{number % 10_000:04d}"


@dataclass
class Shop:
    """Both emulators and every customer, seeded from one seed."""

    wix: WixEmulator
    square: SquareEmulator
    customers: list[Customer]

    @classmethod
    def build(cls, seed: int, customers: int) -> Shop:
        """Emulators seeded from `seed`, with `customers` customers: most on both sides (equal
        or different balances), some on one side only; the program ACTIVE."""
        wix = WixEmulator(seed=seed)
        square = SquareEmulator(seed=seed + 1_000_003, signature_key=SIGNATURE_KEY)
        for knobs in (wix.knobs, square.knobs):
            knobs.requests_per_minute = 0
            knobs.retry_after = 1  # a 429 storm asks for short waits, not a minute each
        wix.activate()
        rng = random.Random(f"{seed}:population")
        people = [_person(rng, n) for n in range(customers)]
        shop = cls(wix, square, [])
        for person, wix_balance, square_balance in people:
            shop.add(person, wix_balance, square_balance)
        return shop

    def add(self, person: Customer, wix_balance: int | None, square_balance: int | None) -> None:
        """Seed one customer where they exist (no webhooks, as if they were there before)."""
        if wix_balance is not None:
            [account] = self.wix.seed_accounts(
                [
                    {
                        "email": person.email,
                        "phone": person.wix_phone,
                        "countryCode": "US",
                        "name": f"Chaos {person.number}",
                        "balance": wix_balance,
                    }
                ]
            )
            person.wix_id = account["id"]
        if square_balance is not None:
            [account] = self.square.seed_accounts(
                [
                    {
                        "email": person.email,
                        "phone": person.phone,
                        "name": f"Chaos {person.number}",
                        "balance": square_balance,
                    }
                ]
            )
            person.square_id = account["id"]
        person.start = square_balance if square_balance is not None else (wix_balance or 0)
        self.customers.append(person)

    def wix_balance(self, customer: Customer) -> int:
        assert customer.wix_id is not None
        with self.wix.state.lock:
            return int(self.wix.state.account(customer.wix_id).points["balance"])

    def square_balance(self, customer: Customer) -> int:
        assert customer.square_id is not None
        with self.square.state.lock:
            return int(self.square.state.account(customer.square_id).balance)

    def change_wix(self, customer: Customer, kind: str, amount: int) -> int | None:
        """A change on the Wix site; the points it moved, or None when Wix refused it."""
        assert customer.wix_id is not None
        with self.wix.state.lock:
            before = self.wix_balance(customer)
            try:
                account, _ = self.wix.activity(customer.wix_id, kind, amount)
            except ApiError:
                return None
            moved = int(account["points"]["balance"]) - before
        customer.wix_changes += moved
        return moved

    def change_square(self, customer: Customer, kind: str, amount: int) -> int | None:
        """A change at the Square till or dashboard; the points it moved, or None if refused."""
        assert customer.square_id is not None
        with self.square.state.lock:
            before = self.square_balance(customer)
            try:
                activity = self.square.activity(customer.square_id, kind, amount)
            except ApiError:
                return None
            moved = int(activity.account["balance"]) - before
        customer.square_changes += moved
        return moved


def _person(rng: random.Random, number: int) -> tuple[Customer, int | None, int | None]:
    kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
    person = Customer(number, kind, f"chaos{number}@example.com", phone_of(number))
    balance = rng.randint(0, MAX_START)
    match kind:
        case "equal":
            return person, balance, balance
        case "different":
            other = max(0, balance + rng.choice((-1, 1)) * rng.randint(1, 150))
            return person, balance, other if other != balance else balance + 7
        case "wix_only":
            return person, balance, None
        case _:
            return person, None, balance


@dataclass(frozen=True)
class Draw:
    """The random choices of one operation, drawn whether or not they end up used."""

    who: int  # index of the customer
    points: int  # 1..120
    share: float  # 0.1..0.9 of a balance
    sign: int  # -1 or 1
    deep: bool  # a correction that takes the till below zero


@dataclass
class Workload:
    """Random customer and owner activity on both sides; `step()` plays one operation."""

    shop: Shop
    rng: random.Random
    played: Counter[str] = field(default_factory=Counter)
    refused: int = 0

    def step(self) -> None:
        """Draw the next operation (always the same draws, so a seed plays the same intents
        whatever syncd did meanwhile) and play it where it applies."""
        kind = self.rng.choices(list(OPERATIONS), weights=list(OPERATIONS.values()))[0]
        draw = Draw(
            who=self.rng.randrange(len(self.shop.customers)),
            points=self.rng.randint(1, 120),
            share=self.rng.uniform(0.1, 0.9),
            sign=self.rng.choice((-1, 1)),
            deep=self.rng.random() < 0.2,
        )
        if kind in ("new_online", "new_at_till"):
            self._new_customer(online=kind == "new_online", points=draw.points)
        elif not self._act(kind, self.shop.customers[draw.who], draw):
            self.refused += 1
            return
        self.played[kind] += 1

    @property
    def total(self) -> int:
        return sum(self.played.values())

    def _act(self, kind: str, who: Customer, draw: Draw) -> bool:
        """One operation on an existing customer; False when it does not apply to them."""
        shop, points = self.shop, draw.points
        online, till = who.wix_id is not None, who.square_id is not None
        match kind:
            case "online_earn" if online:
                return shop.change_wix(who, "earn", points) is not None
            case "online_redeem" if online:
                return self._redeem_wix(who, draw.share * 0.6)
            case "wix_correction" if online:
                return shop.change_wix(who, "adjust", draw.sign * (points % 40 + 1)) is not None
            case "wix_expiry" if online:
                return shop.change_wix(who, "expire", points) is not None
            case "till_sale" if till:
                return shop.change_square(who, "sale", points) is not None
            case "till_redeem" if till:
                return self._redeem_square(who, draw.share * 0.6)
            case "square_correction" if till:
                # now and then a correction takes the till below zero: Wix cannot follow
                amount = draw.sign * (points % 40 + 1)
                if draw.deep:
                    amount = -(max(shop.square_balance(who), 0) + points % 30 + 1)
                return shop.change_square(who, "adjust", amount) is not None
            case "square_expiry" if till:
                return shop.change_square(who, "expire", points) is not None
            case "double_spend" if online and till:
                share = 0.5 + draw.share / 2
                at_till = self._redeem_square(who, share)
                return self._redeem_wix(who, share) or at_till
        return False

    def _redeem_wix(self, who: Customer, share: float) -> bool:
        points = int(self.shop.wix_balance(who) * share)
        return points > 0 and self.shop.change_wix(who, "redeem", points) is not None

    def _redeem_square(self, who: Customer, share: float) -> bool:
        points = int(self.shop.square_balance(who) * share)
        return points > 0 and self.shop.change_square(who, "redeem", points) is not None

    def _new_customer(self, *, online: bool, points: int) -> None:
        """A customer signs up on one side only; their first points fire the webhook."""
        number = len(self.shop.customers)
        person = Customer(
            number,
            "new_online" if online else "new_at_till",
            f"chaos{number}@example.com",
            phone_of(number),
        )
        self.shop.add(person, 0 if online else None, None if online else 0)
        if online:
            self.shop.change_wix(person, "earn", points)
        else:
            self.shop.change_square(person, "sale", points)


# -- faults ------------------------------------------------------------------------------------

CLIENT_TIMEOUT_SECONDS = 3.0  # syncd's timeout_seconds for both APIs in a chaos run


@dataclass
class Episode:
    """A fault that comes and goes: a 429 storm, a latency spike, a burst of 5xx."""

    kind: str
    side: str  # wix | square
    until: float


@dataclass
class FaultPlan:
    """Steady faults on both APIs and their webhooks while the chaos runs, plus episodes that
    come and go; `off()` restores calm for the final settle."""

    shop: Shop
    rng: random.Random
    episodes: list[Episode] = field(default_factory=list)
    started: Counter[str] = field(default_factory=Counter)
    next_at: float = 0.0

    def steady(self) -> None:
        """The background noise: a few 5xx, writes that fail or hang after they were
        applied, small latency, webhooks duplicated, dropped, delayed and reordered."""
        for emulator in (self.shop.wix, self.shop.square):
            faults = emulator.knobs.faults
            faults.error_rate = 0.03
            faults.fail_after_commit_rate = 0.03
            faults.timeout_after_commit_rate = 0.03
            faults.hang_seconds = CLIENT_TIMEOUT_SECONDS * 2
            faults.latency_ms = self.rng.choice((0, 5, 20))
            delivery = emulator.knobs.delivery
            delivery.duplicate_rate = 0.15
            delivery.drop_rate = 0.10
            delivery.reorder_window = 4
            delivery.delay_ms = self.rng.choice((0, 50, 150))
            emulator.knobs.webhook_retry_gaps_seconds = (0.5, 1.0, 2.0, 4.0)

    def tick(self, now: float) -> None:
        """End the episodes that are over; now and then start a new one."""
        for episode in [e for e in self.episodes if e.until <= now]:
            self.episodes.remove(episode)
            self._end(episode)
        if now >= self.next_at:
            self.next_at = now + self.rng.uniform(1.5, 4.0)
            kind = self.rng.choice(("storm", "latency", "errors"))
            side = self.rng.choice(("wix", "square"))
            if not any(e.side == side and e.kind == kind for e in self.episodes):
                episode = Episode(kind, side, now + self.rng.uniform(0.8, 2.5))
                self.episodes.append(episode)
                self._begin(episode)

    def off(self) -> None:
        """Every fault off: calm for the final settle."""
        self.episodes.clear()
        for emulator in (self.shop.wix, self.shop.square):
            faults = emulator.knobs.faults
            faults.error_rate = faults.fail_after_commit_rate = 0.0
            faults.timeout_after_commit_rate = 0.0
            faults.latency_ms = 0
            emulator.knobs.requests_per_minute = 0
            emulator.knobs.delivery = DeliveryFaults(rng=emulator.knobs.delivery.rng)

    def _emulator(self, side: str) -> WixEmulator | SquareEmulator:
        return self.shop.wix if side == "wix" else self.shop.square

    def _begin(self, episode: Episode) -> None:
        self.started[f"{episode.side}_{episode.kind}"] += 1
        emulator = self._emulator(episode.side)
        match episode.kind:
            case "storm":  # the limit drops to a trickle: nearly every request is a 429
                emulator.limiter.reset()
                emulator.knobs.requests_per_minute = self.rng.randint(2, 10)
            case "latency":  # sometimes slower than syncd waits: it gives up, the server not
                emulator.knobs.faults.latency_ms = self.rng.choice((500, 1500, 2500, 4000))
            case _:
                emulator.knobs.faults.error_rate = self.rng.uniform(0.3, 0.6)

    def _end(self, episode: Episode) -> None:
        emulator = self._emulator(episode.side)
        match episode.kind:
            case "storm":
                emulator.knobs.requests_per_minute = 0
            case "latency":
                emulator.knobs.faults.latency_ms = 0
            case _:
                emulator.knobs.faults.error_rate = 0.03


def injected(shop: Shop, plan: FaultPlan) -> Counter[str]:
    """Every fault the run injected: the emulators' own counts (5xx, failures and hangs after
    commit, 429s), webhooks dropped and duplicated, and the episodes started."""
    found: Counter[str] = Counter()
    for emulator in (shop.wix, shop.square):
        for name, count in emulator.stats.faults.items():
            found[name] += count
        found["rate_limited"] += emulator.stats.rate_limited
        found["webhooks_dropped"] += len(emulator.webhooks.dropped)
        firsts = Counter(a.event_id for a in emulator.webhooks.attempts if a.attempt == 1)
        found["webhooks_duplicated"] += sum(n - 1 for n in firsts.values() if n > 1)
    for name, count in plan.started.items():
        found[f"episode_{name}"] += count
    return found
