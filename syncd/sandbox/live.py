"""The live half of `syncd demo`: customers acting on both sides, and a view of syncd keeping up.

    player = Player(wix_site, square, customers, random.Random(seed))
    await player.play(rate=4.0, stop=stop)      # till sales, online redemptions, ... until stop
    player.in_sync()                            # customers whose both balances are as expected
    view = LiveView(sys.stdout)
    view.show(snapshot)                         # a terminal: redrawn in place; else a line now
                                                # and then, without control characters

`Player` applies every change at its source, as a customer would (a sale at the Square till, a
redemption on the Wix site), and adds it to the balance that customer must end with on both
sides: the expectation syncd is checked against, known without asking syncd anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

from connectors.square.emulator import SquareEmulator
from syncd.sandbox.errors import ApiError
from syncd.sandbox.wix import WixEmulator

BOTH_SIDES_SHARE = 0.08  # a customer buys at the till while redeeming online, between two syncs
PLAIN_EVERY_SECONDS = 5.0
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
    """What the customers did, by side and kind (refused: the side said no, nothing counted)."""

    online_redeemed: int = 0
    online_earned: int = 0
    till_sales: int = 0
    till_redeemed: int = 0
    both_sides: int = 0
    refused: int = 0

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
        self,
        wix_site: WixEmulator,
        square: SquareEmulator,
        customers: list[Customer],
        rng: random.Random,
    ) -> None:
        self.wix_site = wix_site
        self.square = square
        self.customers = customers
        self.rng = rng
        self.played = Played()
        self._playable = [c for c in customers if c.wix_id and c.square_id]

    async def play(self, rate: float, stop: asyncio.Event) -> None:
        """About `rate` changes a second, at random moments, until `stop` is set."""
        while not stop.is_set() and self._playable:
            self.step()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.rng.expovariate(rate))

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
        balance = int(self.wix_site.state.account(customer.wix_id).points["balance"])
        points = self._redeemable(customer, balance)
        kind = "redeem" if points and self.rng.random() < redeem_share else "earn"
        if kind == "earn":
            points = self.rng.randint(5, 60)
        try:
            self.wix_site.activity(customer.wix_id, kind, points)
        except ApiError:
            self.played.refused += 1
            return
        customer.expected += -points if kind == "redeem" else points
        if kind == "redeem":
            self.played.online_redeemed += 1
        else:
            self.played.online_earned += 1

    def _till(self, customer: Customer, sale_share: float = 0.8) -> None:
        assert customer.square_id is not None
        balance = int(self.square.account(customer.square_id)["balance"])
        points = self._redeemable(customer, balance)
        kind = "sale" if not points or self.rng.random() < sale_share else "redeem"
        if kind == "sale":
            points = self.rng.randint(5, 80)
        try:
            self.square.activity(customer.square_id, kind, points)
        except ApiError:
            self.played.refused += 1
            return
        customer.expected += points if kind == "sale" else -points
        if kind == "sale":
            self.played.till_sales += 1
        else:
            self.played.till_redeemed += 1

    def _redeemable(self, customer: Customer, side_balance: int) -> int:
        """Points to redeem (tens, at most half of what the customer has here and in all), or
        0: a customer never spends points they do not have, on either side."""
        cap = min(side_balance, customer.expected) // 2
        return self.rng.randrange(10, cap + 1, 10) if cap >= 10 else 0

    def balances(self) -> tuple[dict[str, int], dict[str, int]]:
        """Every balance now: (Wix by account id, Square by account id)."""
        wix = {a["id"]: int(a["points"]["balance"]) for a in self.wix_site.state.all_accounts()}
        square = {a["id"]: int(a["balance"]) for a in self.square.accounts()}
        return wix, square

    def mismatches(self) -> list[str]:
        """One line per customer whose balances are not both what was played."""
        wix, square = self.balances()
        lines = []
        for c in self.customers:
            at_wix = wix.get(c.wix_id or "")
            at_square = square.get(c.square_id or "")
            if at_wix != c.expected or at_square != c.expected:
                lines.append(
                    f"{c.email}: expected {c.expected}, Wix {_shown(at_wix)}, "
                    f"Square {_shown(at_square)}"
                )
        return lines

    def in_sync(self) -> int:
        """How many customers have the expected balance on both sides."""
        return len(self.customers) - len(self.mismatches())


def _shown(balance: int | None) -> str:
    return "no account" if balance is None else str(balance)


@dataclass(frozen=True)
class Snapshot:
    """What the live view shows at one moment."""

    elapsed: float
    duration: float
    settling: float | None  # seconds since play stopped, None while playing
    played: Played
    received: int
    duplicates: int
    lost: int
    wix_writes: int
    square_writes: int
    waiting: int
    in_sync: int
    customers: int


class LiveView:
    """On a terminal, a block of lines redrawn in place; elsewhere, one plain line every few
    seconds. Notes (warnings) are printed above the block as they come."""

    def __init__(self, out: TextIO, *, every: float = PLAIN_EVERY_SECONDS) -> None:
        self.out = out
        self.tty = out.isatty()
        self.every = every
        self.notes: list[str] = []  # appended from any thread, drawn by `show`
        self._noted = 0
        self._drawn = 0
        self._printed_at = -math.inf

    def show(self, snapshot: Snapshot, *, final: bool = False) -> None:
        """Redraw (terminal) or, when due or final, print one line."""
        if self.tty:
            self._redraw(snapshot)
        elif final or time.monotonic() - self._printed_at >= self.every:
            self._printed_at = time.monotonic()
            self._write_notes()
            self.out.write(plain_line(snapshot) + "\n")
        self.out.flush()

    def _redraw(self, snapshot: Snapshot) -> None:
        if self._drawn:
            self.out.write(f"\r\x1b[{self._drawn}A\x1b[J")  # up to the block, clear below
        self._write_notes()
        lines = block(snapshot)
        self.out.write("".join(line + "\n" for line in lines))
        self._drawn = len(lines)

    def _write_notes(self) -> None:
        fresh, self._noted = self.notes[self._noted :], len(self.notes)
        for note in fresh:
            self.out.write(f"  ! {note}\n")


def block(s: Snapshot) -> list[str]:
    """The terminal view: a few lines, each under 80 characters."""
    if s.settling is None:
        done = min(s.elapsed / s.duration, 1.0) if s.duration else 1.0
        filled = round(BAR_WIDTH * done)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        head = f"live      {s.elapsed:5.1f} s of {s.duration:g} s  [{bar}]  Ctrl-C stops"
    else:
        head = f"settling  {s.settling:4.1f} s: play stopped, syncd carries the last changes"
    mark = "all in sync" if s.in_sync == s.customers else "catching up"
    return [
        f"  {head}",
        f"  played    {s.played.total} changes: {s.played.online} online, "
        f"{s.played.till} at the till ({s.played.both_sides} on both at once)",
        f"  webhooks  {s.received} received, {s.duplicates} duplicates dropped, "
        f"{s.lost} lost on the way",
        f"  writes    {s.wix_writes} to Wix, {s.square_writes} to Square; "
        f"{s.waiting} links waiting",
        f"  in sync   {s.in_sync} of {s.customers} customers ({mark})",
    ]


def plain_line(s: Snapshot) -> str:
    """The same, on one line without control characters (CI logs, pipes)."""
    when = f"{s.elapsed:5.1f}s" if s.settling is None else f"settling {s.settling:.1f}s"
    return (
        f"  {when}  played {s.played.total} ({s.played.online} online, {s.played.till} till)"
        f"  webhooks {s.received} received, {s.duplicates} duplicates, {s.lost} lost"
        f"  writes {s.wix_writes} Wix, {s.square_writes} Square  waiting {s.waiting}"
        f"  in sync {s.in_sync}/{s.customers}"
    )


class _Collect(logging.Handler):
    """Counts warnings; on a terminal also keeps each as a note for the view, formatted as the
    handler it stands in for would have."""

    def __init__(self, view: LiveView) -> None:
        super().__init__(logging.WARNING)
        self.view = view
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if self.view.tty:
            self.view.notes.append(self.format(record).splitlines()[0])  # never a traceback


@contextlib.contextmanager
def quiet_logs(view: LiveView, names: tuple[str, ...] = ("syncd", "uvicorn")) -> Iterator[_Collect]:
    """While the view runs, syncd's INFO events stay quiet (the view says it better) and
    warnings are counted. On a terminal they become notes above the view instead of lines
    that would tear it; elsewhere they still go to stderr. Restores the loggers on exit."""
    collect = _Collect(view)
    saved = []
    for name in names:
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.level, logger.propagate))
        if logger.handlers and collect.formatter is None:
            collect.setFormatter(logger.handlers[0].formatter)
        if view.tty:
            logger.handlers[:] = [collect]
            logger.propagate = False
        else:
            logger.handlers[:] = [*logger.handlers, collect]
        if name == "syncd":
            logger.setLevel(logging.WARNING)
    try:
        yield collect
    finally:
        for logger, handlers, level, propagate in saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
