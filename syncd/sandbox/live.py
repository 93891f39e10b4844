"""The live half of `syncd demo`: customers acting on both sides, and a view of syncd keeping up.

`Player` applies every change at its source, as a customer would (a sale at the Square till, a
redemption on the Wix site), and adds it to the balance that customer must end with on both
sides: the expectation syncd is checked against, known without asking syncd anything.
`LiveView` redraws a few lines in place on a terminal and prints a plain line every few
seconds anywhere else (CI logs, pipes); `play_and_settle` runs both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from connectors.square.emulator import SquareEmulator
from syncd.engine.outbox import TAG_PREFIX
from syncd.sandbox.errors import ApiError
from syncd.sandbox.wix import WixEmulator

PLAY_RATE = 4.0  # changes a second
BOTH_SIDES_SHARE = 0.08  # a customer buys at the till while redeeming online, between two syncs
REFRESH_SECONDS = 0.5
PLAIN_EVERY_SECONDS = 5.0
SETTLE_SECONDS = 15.0
BAR_WIDTH = 20


@dataclass
class Customer:
    """One customer on both sides, and the balance both must end with."""

    email: str
    wix_id: str | None
    square_id: str | None
    expected: int


@dataclass
class Played:
    """What the customers did, by side and kind."""

    online_redeemed: int = 0
    online_earned: int = 0
    till_sales: int = 0
    till_redeemed: int = 0
    both_sides: int = 0

    @property
    def online(self) -> int:
        return self.online_redeemed + self.online_earned

    @property
    def till(self) -> int:
        return self.till_sales + self.till_redeemed

    @property
    def total(self) -> int:
        return self.online + self.till


class Player:
    """Random customer activity on both sides, tracking every customer's expected balance."""

    def __init__(
        self, wix: WixEmulator, square: SquareEmulator, customers: list[Customer], seed: int
    ) -> None:
        self.wix = wix
        self.square = square
        self.customers = customers
        self.rng = random.Random(seed)
        self.played = Played()
        self._playable = [c for c in customers if c.wix_id and c.square_id]

    async def play(self, rate: float, stop: asyncio.Event) -> None:
        """About `rate` changes a second, at irregular moments, until `stop` is set; a moment
        missed while the event loop was busy is made up at once."""
        due = time.monotonic()
        while self._playable:
            due += self.rng.uniform(0.2, 1.8) / rate
            await wait(stop, due - time.monotonic())
            if stop.is_set():
                return
            self.step()

    def step(self) -> None:
        """One customer acts: online, at the till, or (now and then) on both at once."""
        customer = self.rng.choice(self._playable)
        roll = self.rng.random()
        if roll < BOTH_SIDES_SHARE:
            self._till(customer, sale_share=1.0)
            self._online(customer, redeem_share=1.0)
            self.played.both_sides += 1
        elif roll < 0.5 + BOTH_SIDES_SHARE / 2:
            self._online(customer)
        else:
            self._till(customer)

    def _online(self, customer: Customer, redeem_share: float = 0.6) -> None:
        assert customer.wix_id is not None
        balance = int(self.wix.state.account(customer.wix_id).points["balance"])
        points = self._redeemable(customer, balance)
        redeem = points > 0 and self.rng.random() < redeem_share
        points = points if redeem else self.rng.randint(5, 60)
        try:
            self.wix.activity(customer.wix_id, "redeem" if redeem else "earn", points)
        except ApiError:  # the balance moved since it was read: this customer skips a turn
            return
        customer.expected += -points if redeem else points
        self.played.online_redeemed += redeem
        self.played.online_earned += not redeem

    def _till(self, customer: Customer, sale_share: float = 0.8) -> None:
        assert customer.square_id is not None
        points = self._redeemable(customer, int(self.square.account(customer.square_id)["balance"]))
        redeem = points > 0 and self.rng.random() >= sale_share
        points = points if redeem else self.rng.randint(5, 80)
        try:
            self.square.activity(customer.square_id, "redeem" if redeem else "sale", points)
        except ApiError:  # the balance moved since it was read: this customer skips a turn
            return
        customer.expected += -points if redeem else points
        self.played.till_redeemed += redeem
        self.played.till_sales += not redeem

    def _redeemable(self, customer: Customer, balance: int) -> int:
        """Points to redeem (tens, at most half of what the customer has on this side and in
        all), or 0: a customer never spends points they do not have, on either side."""
        cap = min(balance, customer.expected) // 2
        return self.rng.randrange(10, cap + 1, 10) if cap >= 10 else 0

    def mismatches(self) -> list[str]:
        """One line per customer whose balances are not both what was played."""
        wix = {a["id"]: int(a["points"]["balance"]) for a in self.wix.state.all_accounts()}
        square = {a["id"]: int(a["balance"]) for a in self.square.accounts()}
        lines = []
        for c in self.customers:
            at_wix = wix.get(c.wix_id or "", "no account")
            at_square = square.get(c.square_id or "", "no account")
            if at_wix != c.expected or at_square != c.expected:
                lines.append(f"{c.email}: expected {c.expected}, Wix {at_wix}, Square {at_square}")
        return lines

    def in_sync(self) -> int:
        """How many customers have the expected balance on both sides."""
        return len(self.customers) - len(self.mismatches())


def tagged_writes(wix: WixEmulator, square: SquareEmulator) -> tuple[int, int]:
    """syncd's writes in both ledgers, by their `syncd:<operation>` tag: (how many, how many
    of them were applied more than once)."""
    tags: Counter[str] = Counter()
    for entry in wix.state.all_transactions():
        tags[str(entry.get("description") or "").split(" ")[0]] += 1
    for entry in square.events():
        tags[str((entry.get("adjust_points") or {}).get("reason") or "").split(" ")[0]] += 1
    ours = [count for tag, count in tags.items() if tag.startswith(TAG_PREFIX)]
    return len(ours), sum(1 for count in ours if count > 1)


def plural(count: int, word: str) -> str:
    """`1 change`, `2 changes`."""
    return f"{count} {word}{'' if count == 1 else 's'}"


# -- the view --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counters:
    """syncd's counts (its metrics) and the emulators' (their webhook delivery logs)."""

    sent: int = 0  # webhook events the emulators emitted
    lost: int = 0  # dropped on the way (delivery faults)
    queued: int = 0  # not sent yet
    received: int = 0  # stored by syncd: first deliveries
    duplicates: int = 0  # redeliveries syncd acknowledged and dropped
    rejected: int = 0
    syncs: int = 0
    wix_writes: int = 0
    square_writes: int = 0
    waiting: int = 0  # dirty links


@dataclass(frozen=True)
class Snapshot:
    """What the live view shows at one moment."""

    elapsed: float
    duration: float
    settling: float | None  # seconds since play stopped, None while playing
    final: bool
    played: Played
    counters: Counters
    in_sync: int
    customers: int


class LiveView:
    """On a terminal, a block of lines redrawn in place; elsewhere, one plain line every few
    seconds. Notes (warnings) are printed above the block as they come."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.notes: list[str] = []  # appended from any thread, written by `show`
        self._noted = 0
        self._drawn = 0
        self._printed_at = -math.inf

    def show(self, snapshot: Snapshot) -> None:
        """Redraw (terminal) or, when due or final, print one line."""
        if self._drawn:
            self.out.write(f"\r\x1b[{self._drawn}A\x1b[J")  # up to the block, clear below
        fresh, self._noted = self.notes[self._noted :], len(self.notes)
        self.out.write("".join(f"  ! {note}\n" for note in fresh))
        if self.tty:
            lines = block(snapshot)
            self.out.write("".join(line + "\n" for line in lines))
            self._drawn = len(lines)
        elif snapshot.final or time.monotonic() - self._printed_at >= PLAIN_EVERY_SECONDS:
            self._printed_at = time.monotonic()
            self.out.write(plain_line(snapshot) + "\n")
        self.out.flush()


def block(s: Snapshot) -> list[str]:
    """The terminal view: a few lines, each under 80 characters."""
    if s.final:
        head = f"done      {s.elapsed:.1f} s of activity, then {s.settling or 0:.1f} s for syncd"
    elif s.settling is None:
        done = min(s.elapsed / s.duration, 1.0) if s.duration else 1.0
        bar = "#" * round(BAR_WIDTH * done) + "." * (BAR_WIDTH - round(BAR_WIDTH * done))
        head = f"live      {s.elapsed:4.1f} s of {s.duration:g} s  [{bar}]  Ctrl-C stops"
    else:
        head = f"settling  {s.settling:.1f} s: play stopped, syncd carries the last changes"
    c = s.counters
    return [
        f"  {head}",
        f"  played    {plural(s.played.total, 'change')}: {s.played.online} online, "
        f"{s.played.till} at the till ({s.played.both_sides} on both at once)",
        f"  webhooks  {c.received} received, {c.duplicates} duplicates dropped, "
        f"{c.lost} lost on the way",
        f"  writes    {c.wix_writes} to Wix, {c.square_writes} to Square; "
        f"{plural(c.waiting, 'link')} waiting",
        f"  in sync   {s.in_sync} of {s.customers} customers"
        + (" (all)" if s.in_sync == s.customers else ""),
    ]


def plain_line(s: Snapshot) -> str:
    """The same on one line, without control characters."""
    if s.final:
        when = f"done: {s.elapsed:.1f}s played, {s.settling or 0:.1f}s settling"
    elif s.settling is None:
        when = f"{s.elapsed:5.1f}s"
    else:
        when = f"settling {s.settling:.1f}s"
    c = s.counters
    return (
        f"  {when}  played {s.played.total} ({s.played.online} online, {s.played.till} till)"
        f"  webhooks {c.received} received, {c.duplicates} duplicates, {c.lost} lost"
        f"  writes {c.wix_writes} Wix, {c.square_writes} Square  waiting {c.waiting}"
        f"  in sync {s.in_sync}/{s.customers}"
    )


# -- the live run ----------------------------------------------------------------------------


async def play_and_settle(
    player: Player,
    view: LiveView,
    counters: Callable[[], Counters],
    duration: float,
    keys: Keys,
) -> tuple[float, str]:
    """Play for `duration` (or until Ctrl-C), then give syncd up to SETTLE_SECONDS to bring
    every customer in sync (a second Ctrl-C stops waiting), showing the view all along.
    Returns the seconds played and how the wait for syncd ended."""

    def show(played: float, settling: float | None = None, final: bool = False) -> None:
        synced, total = player.in_sync(), len(player.customers)
        view.show(
            Snapshot(played, duration, settling, final, player.played, counters(), synced, total)
        )

    start = time.monotonic()
    stop_play = asyncio.Event()
    playing = asyncio.create_task(player.play(PLAY_RATE, stop_play))
    while (elapsed := time.monotonic() - start) < duration and not keys.first.is_set():
        show(elapsed)
        await wait(keys.first, min(REFRESH_SECONDS, duration - elapsed))
    stop_play.set()
    await playing
    played = min(time.monotonic() - start, duration)
    if keys.first.is_set():
        view.notes.append("Ctrl-C: play stopped; waiting for syncd (Ctrl-C again: stop now)")
    settle = time.monotonic()
    while player.in_sync() < len(player.customers) and not keys.second.is_set():
        if time.monotonic() - settle >= SETTLE_SECONDS:
            break
        show(played, time.monotonic() - settle)
        await wait(keys.second, REFRESH_SECONDS)
    settled = time.monotonic() - settle
    show(played, settled, final=True)
    if player.in_sync() == len(player.customers):
        return played, f"settled in {settled:.1f} s"
    ended = "Ctrl-C stopped the wait for syncd" if keys.second.is_set() else "not settled"
    return played, f"{ended} after {settled:.1f} s"


async def wait(event: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `event` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), max(seconds, 0.0))


@dataclass
class Keys:
    """Ctrl-C once: stop playing and settle; twice: stop waiting for syncd too."""

    first: asyncio.Event = field(default_factory=asyncio.Event)
    second: asyncio.Event = field(default_factory=asyncio.Event)

    def press(self) -> None:
        (self.second if self.first.is_set() else self.first).set()


@contextlib.contextmanager
def ctrl_c() -> Iterator[Keys]:
    """Ctrl-C (SIGINT) sets an event instead of raising in the middle of a write, where
    asyncio can take the signal (not on Windows: there it raises KeyboardInterrupt)."""
    keys = Keys()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, keys.press)
    try:
        yield keys
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)


class _OneLine(logging.Handler):
    """Counts warnings and shows each on one line: on a terminal as a note above the view,
    elsewhere on stderr. syncd's events keep syncd's format."""

    def __init__(self, view: LiveView, syncd_format: logging.Formatter | None) -> None:
        super().__init__(logging.WARNING)
        self.view = view
        self.syncd_format = syncd_format
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if record.name.startswith("syncd") and self.syncd_format is not None:
            text = self.syncd_format.format(record).splitlines()[0]
        else:
            text = f"{record.name}: {record.getMessage()}".splitlines()[0]
            if record.exc_info and record.exc_info[0] is not None:
                text += f" ({record.exc_info[0].__name__})"
        if self.view.tty:
            self.view.notes.append(text)
        else:
            sys.stderr.write(text + "\n")


@contextlib.contextmanager
def quiet_logs(
    view: LiveView, names: tuple[str, ...] = ("syncd", "uvicorn", "apscheduler")
) -> Iterator[_OneLine]:
    """While the view runs, syncd's INFO events stay quiet (the view says it better) and every
    warning is counted and kept to one line: a poll or a request cut short as the servers
    stop needs no traceback. Restores the loggers on exit."""
    syncd_handlers = logging.getLogger("syncd").handlers
    handler = _OneLine(view, syncd_handlers[0].formatter if syncd_handlers else None)
    saved = []
    for name in names:
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.level, logger.propagate))
        logger.handlers[:] = [handler]
        logger.propagate = False
        if name == "syncd":
            logger.setLevel(logging.WARNING)
    try:
        yield handler
    finally:
        for logger, handlers, level, propagate in saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
