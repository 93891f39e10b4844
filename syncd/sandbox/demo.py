"""`syncd demo`: syncd keeping a Wix site and a Square till in step, live, on this machine.

One process, no accounts anywhere:

1. start the Wix and Square emulators on local ports, their webhooks pointed at syncd and
   delivered as vendors do on a bad day (some sent twice, some lost, some out of order);
2. seed the same customers on both sides (a share with till sales Wix never heard of) and a
   dozen known only at the till, then backfill (`syncd --reconcile`, in-process);
3. run the daemon (`syncd run`, in-process, polling every second for what webhooks lose)
   while customers buy at the till and redeem online (`syncd.sandbox.live`);
4. after `duration` seconds or Ctrl-C: let syncd settle, stop it, and check every balance on
   both sides against the balance the played activity says it must have. Exit 0 when all match.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

import httpx

import connectors
from connectors.square.emulator import SquareEmulator
from syncd.clock import utcnow
from syncd.reconcile.report import Report
from syncd.reconcile.run import Options, reconcile
from syncd.runtime.daemon import Daemon
from syncd.runtime.dirty import backlog
from syncd.runtime.overview import overview
from syncd.sandbox import live
from syncd.sandbox.emulator import customer_specs
from syncd.sandbox.live import Counters, Customer, Keys, Player, plural
from syncd.sandbox.server import serve_in_thread
from syncd.sandbox.wix import WixEmulator
from syncd.settings import Settings, load_settings
from syncd.store.db import open_store
from syncd.wix.client import WixClient

SANDBOX_RATE = 60_000  # requests a minute, emulators and syncd's budget: not the subject here
TILL_ONLY = 12  # customers known only at the Square till
CONNECTOR = "shop"
SIGNATURE_KEY = "demo-signature-key"
DUPLICATE_RATE, DROP_RATE, REORDER_WINDOW = 0.10, 0.05, 3
SEEDED_AGO = timedelta(hours=1)
READY_SECONDS = 15.0
WARM_UP_SECONDS = 30.0
SHOWN_MISMATCHES = 10

Say = Callable[[str], None]


class DemoError(Exception):
    """The demo could not run (a sync that goes wrong is not this: it is a mismatch)."""


@dataclass
class Sandbox:
    """Both emulators, and each seeded customer's till balance (by email): what both sides
    hold after the backfill, the till's balance winning a new link (initial_policy external)."""

    wix: WixEmulator
    square: SquareEmulator
    till_balances: dict[str, int]
    differing: int  # customers seeded with more points at the till than on Wix


@dataclass
class Outcome:
    """What the summary reports, besides the emulators' own state."""

    report: Report
    player: Player
    counters: Counters = field(default_factory=Counters)
    calls: tuple[int, int] = (0, 0)  # Wix, Square: after the backfill
    rate_limited: int = 0
    conflicts_open: int = 0
    played_for: float = 0.0
    settled: str = "syncd not run"  # how the wait for syncd ended
    warnings: int = 0


def demo(
    *, accounts: int = 250, duration: float = 20.0, seed: int = 0, out: TextIO = sys.stdout
) -> int:
    """Run the demo; 0 when every balance on both sides is what the played activity says."""
    try:
        return asyncio.run(_demo(accounts, duration, seed, out))
    except KeyboardInterrupt:  # only before the demo's own Ctrl-C handling is in place
        out.write("\nsyncd demo: interrupted before it started\n")
        return 130
    except DemoError as error:
        out.write(f"syncd demo: {error}\n")
        return 1


async def _demo(accounts: int, duration: float, seed: int, out: TextIO) -> int:
    started = time.monotonic()

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    box = _sandbox(accounts, seed)
    say("syncd demo: a Wix site and a Square till, both emulated on this machine")
    with (
        live.ctrl_c() as keys,
        serve_in_thread(box.wix.app) as wix_at,
        serve_in_thread(box.square.app) as square_at,
        tempfile.TemporaryDirectory(prefix="syncd-demo-") as scratch,
    ):
        say(
            f"  [1] Wix emulator on {wix_at.url}, Square emulator on {square_at.url}\n"
            f"      {accounts} customers on both sides ({box.differing} with till sales Wix "
            f"never saw), {TILL_ONLY} only at the till\n"
            f"      webhooks to syncd: {DUPLICATE_RATE:.0%} sent twice, {DROP_RATE:.0%} lost, "
            f"shuffled {REORDER_WINDOW} at a time"
        )
        database = f"sqlite:///{Path(scratch) / 'syncd.db'}"
        settings = _settings(box, wix_at.url, square_at.url, _free_port(), database)
        view = live.LiveView(out)
        with live.quiet_logs(view) as warnings:
            outcome = await _run(settings, box, view, say, duration, keys)
        outcome.warnings = warnings.count
    ok = _summary(say, outcome, box, time.monotonic() - started)
    say("next: `syncd sandbox --port 9000` keeps the emulators running for your own tries")
    return 0 if ok else 1


class _Clock:
    """The emulators' clock: an hour back while customers are seeded (their points predate
    syncd, as in any shop that installs it), then the real time."""

    def __init__(self) -> None:
        self.offset = SEEDED_AGO

    def __call__(self) -> datetime:
        return utcnow() - self.offset


def _sandbox(accounts: int, seed: int) -> Sandbox:
    """Both emulators with the same customers; a third of them bought at the till since Wix
    last heard, and a dozen exist only at the till."""
    rng, clock = random.Random(seed), _Clock()
    wix = WixEmulator(seed=seed, clock=clock, monotonic=time.monotonic)
    square = SquareEmulator(
        seed=seed + 1, signature_key=SIGNATURE_KEY, clock=clock, monotonic=time.monotonic
    )
    for knobs in (wix.knobs, square.knobs):
        knobs.requests_per_minute = SANDBOX_RATE
        knobs.delivery.duplicate_rate = DUPLICATE_RATE
        knobs.delivery.drop_rate = DROP_RATE
        knobs.delivery.reorder_window = REORDER_WINDOW
    wix.seed_accounts(accounts)  # the same made-up customers `customer_specs` gives
    at_till = [
        spec | {"balance": spec["balance"] + rng.choice((0, 0, rng.randint(5, 120)))}
        for spec in customer_specs(accounts, existing=0, phone="+1415555{:04d}")
    ]
    at_wix = [a["points"]["balance"] for a in wix.state.all_accounts()]
    differing = sum(1 for a, w in zip(at_till, at_wix, strict=True) if a["balance"] != w)
    at_till += [
        {
            "email": f"till-only-{i}@example.com",
            "phone": f"+1628555{i:04d}",
            "balance": rng.randint(10, 300),
        }
        for i in range(TILL_ONLY)
    ]
    square.seed_accounts(at_till)
    clock.offset = timedelta(0)
    wix.activate()  # now: its program_updated webhook is signed at the real time
    return Sandbox(wix, square, {a["email"]: int(a["balance"]) for a in at_till}, differing)


def _settings(box: Sandbox, wix_url: str, square_url: str, port: int, database: str) -> Settings:
    """syncd's configuration, built here and nowhere else: no file, no environment."""
    wix = {
        "base_url": wix_url,
        "site_id": box.wix.credentials.site_id,
        "api_key": box.wix.credentials.api_key,
        "webhook_public_key": box.wix.public_key_pem,
        "requests_per_minute": SANDBOX_RATE,
    }
    shop = {
        "name": CONNECTOR,
        "type": "square",
        "base_url": square_url,
        "access_token": box.square.access_token,
        "webhook_signature_key": SIGNATURE_KEY,
        "webhook_url": f"http://127.0.0.1:{port}/webhooks/{CONNECTOR}",
        "create_missing": "wix",
        "requests_per_minute": SANDBOX_RATE,
    }
    sync = {"initial_policy": "external", "poll_interval_seconds": 1, "drift_check_cron": ""}
    server = {"host": "127.0.0.1", "port": port}
    defaults = {"database": {"url": database}, "wix": wix, "sync": sync, "server": server}
    return load_settings(environ={}, defaults=defaults | {"connectors": [shop]})


async def _run(
    settings: Settings, box: Sandbox, view: live.LiveView, say: Say, duration: float, keys: Keys
) -> Outcome:
    """Backfill, then the daemon with customers acting; what happened."""
    [typed] = connectors.typed_settings(settings)
    engine = open_store(settings.database.url)
    try:
        async with WixClient(settings.wix) as wix, connectors.create(typed) as shop:
            report = await reconcile(engine, settings, wix, shop, Options())
            _say_backfill(say, report)
            player = Player(box.wix, box.square, _customers(box), box.wix.seed + 2)
            outcome, before = Outcome(report, player), (wix.calls, shop.calls)
            if keys.first.is_set():
                say("  Ctrl-C: stopped after the backfill, before `syncd run`")
                return outcome
            daemon = Daemon(settings, engine, wix, {CONNECTOR: shop})
            say(
                f"  [3] syncd run on http://127.0.0.1:{settings.server.port}: webhooks, and a "
                f"poll every {settings.sync.poll_interval_seconds} s for what they lose"
            )
            async with _running(daemon, box):
                await _warm_up(daemon, box, say, keys)
                say(f"  [4] customers act for {duration:g} s, online and at the till:")
                outcome.played_for, outcome.settled = await live.play_and_settle(
                    player, view, lambda: _counters(daemon, box), duration, keys
                )
            outcome.counters = _counters(daemon, box)
            outcome.calls = (wix.calls - before[0], shop.calls - before[1])
            outcome.rate_limited = wix.rate_limited
            outcome.conflicts_open = sum(overview(engine)["conflicts_open"].values())
            return outcome
    finally:
        engine.dispose()


def _customers(box: Sandbox) -> list[Customer]:
    """Every seeded customer with their account on each side, paired by email (as a person
    checking would, not through syncd's links)."""
    wix_ids = {a.get("contact", {}).get("email"): a["id"] for a in box.wix.state.all_accounts()}
    emails = {c["id"]: c.get("email_address") for c in box.square.customers()}
    square_ids = {emails.get(a["customer_id"]): a["id"] for a in box.square.accounts()}
    return [
        Customer(email, wix_ids.get(email), square_ids.get(email), balance)
        for email, balance in box.till_balances.items()
    ]


def _counters(daemon: Daemon, box: Sandbox) -> Counters:
    """syncd's metrics and the emulators' delivery logs, now."""
    hooks = (box.wix.webhooks, box.square.webhooks)

    def metric(name: str, key: str, *values: str, **labels: str) -> int:
        return sum(int(daemon.metrics.value(name, **{key: v}, **labels)) for v in values)

    def webhooks(name: str) -> int:
        return metric(f"syncd_webhooks_{name}_total", "source", "wix", CONNECTOR)

    return Counters(
        sent=sum(len(h.events) for h in hooks),
        lost=sum(len(h.dropped) for h in hooks),
        queued=sum(len(h.pending) for h in hooks),
        received=webhooks("received"),
        duplicates=webhooks("duplicate"),
        rejected=webhooks("rejected"),
        syncs=metric("syncd_syncs_total", "result", "ok", "error", connector=CONNECTOR),
        wix_writes=metric("syncd_writes_total", "side", "wix", connector=CONNECTOR),
        square_writes=metric("syncd_writes_total", "side", "external", connector=CONNECTOR),
        waiting=backlog(daemon.engine)[0],
    )


@contextlib.asynccontextmanager
async def _running(daemon: Daemon, box: Sandbox) -> AsyncIterator[None]:
    """The daemon serving on its port, webhooks flowing to it; on exit the emulators stop
    sending (what is still queued stays with them, as with a vendor) and the daemon stops."""
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    base = f"http://127.0.0.1:{daemon.settings.server.port}"
    try:
        await _until_ready(f"{base}/readyz", task)
        box.wix.webhooks.url = f"{base}/webhooks/wix"
        box.square.webhooks.url = f"{base}/webhooks/{CONNECTOR}"
        yield
    finally:
        box.wix.webhooks.url = box.square.webhooks.url = None
        stop.set()
        await asyncio.wait({task})
    task.result()  # reached when the block ended well: a daemon that failed says so


async def _until_ready(url: str, task: asyncio.Task[None]) -> None:
    deadline = time.monotonic() + READY_SECONDS
    async with httpx.AsyncClient(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if task.done():
                raise DemoError(f"the daemon stopped before it was ready: {task.exception()}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise DemoError(f"the daemon was not ready within {READY_SECONDS:g} s ({url})")


async def _warm_up(daemon: Daemon, box: Sandbox, say: Say, keys: Keys) -> None:
    """The daemon's first seconds: the backfill's own writes come back as webhooks (and the
    first polls look a minute back), so every link changed lately is checked once. Wait until
    that is done (nothing dirty, nothing queued, twice in a row) before customers act."""
    started = time.monotonic()
    first_polls = 2.5 * daemon.settings.sync.poll_interval_seconds
    quiet = 0
    while quiet < 2 and time.monotonic() - started < WARM_UP_SECONDS:
        now = _counters(daemon, box)
        busy = now.queued or now.waiting or time.monotonic() - started < first_polls
        quiet = 0 if busy else quiet + 1
        await live.wait(keys.first, 0.25)
        if keys.first.is_set():
            break
    done = _counters(daemon, box)
    writes = done.wix_writes + done.square_writes
    say(
        f"      first the backfill's own writes echo back as webhooks: "
        f"{plural(done.syncs, 'sync')} in {time.monotonic() - started:.1f} s, "
        f"{plural(writes, 'write') if writes else 'nothing to write'}"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- what is printed -------------------------------------------------------------------------


def _say_backfill(say: Say, r: Report) -> None:
    linked = ", ".join(f"{how} {n}" for how, n in sorted(r.linked.items())) or "none"
    first_error = f" (first: {r.errors[0]})" if r.errors else ""
    say(f"  [2] backfill (`syncd --reconcile`): {sum(r.linked.values())} linked ({linked})")
    say(
        f"      created: Wix {r.created_wix}, Square {r.created_external}; adjusted: Wix "
        f"{r.wix_adjusted} ({r.wix_points:+,} points), Square {r.ext_adjusted} "
        f"({r.ext_points:+,}); {r.unchanged} already equal"
    )
    say(
        f"      {r.conflicts_open} conflicts open, {r.ambiguous} ambiguous, "
        f"{plural(len(r.errors), 'error')}{first_error}; "
        f"{r.wix_calls + r.external_calls} API calls in {r.seconds:.1f} s"
    )


def _summary(say: Say, outcome: Outcome, box: Sandbox, seconds: float) -> bool:
    """Print the summary; True when every balance matches and no write was applied twice."""
    c, played, report = outcome.counters, outcome.player.played, outcome.report
    tagged, repeated = live.tagged_writes(box.wix, box.square)
    mismatches = outcome.player.mismatches()
    total = len(outcome.player.customers)
    queued = f", {c.queued} still queued" if c.queued else ""
    once = (
        f"{repeated} of syncd's {tagged} tagged writes applied more than once"
        if repeated
        else f"each of syncd's {tagged} tagged writes (backfill included) applied once"
    )
    fields = {
        "customers": f"{total} ({total - TILL_ONLY} on both sides, {TILL_ONLY} only at the "
        "till before the backfill)",
        "played": f"{plural(played.total, 'change')}: {played.online} online "
        f"({played.online_redeemed} redeemed, {played.online_earned} earned), {played.till} "
        f"at the till ({played.till_sales} sales, {played.till_redeemed} redeemed); "
        f"{played.both_sides} on both sides at once",
        "webhooks": f"{c.sent} sent, {c.lost} lost on the way{queued}; syncd stored "
        f"{c.received}, dropped {c.duplicates} duplicates, rejected {c.rejected}",
        "writes": f"to Wix {c.wix_writes}, to Square {c.square_writes}; {once}",
        "API calls": f"Wix {outcome.calls[0]:,}, Square {outcome.calls[1]:,} after the "
        f"backfill's {report.wix_calls} and {report.external_calls}; "
        f"{outcome.rate_limited} rate-limited",
        "conflicts": f"{outcome.conflicts_open} open",
    }
    if outcome.warnings:
        fields["warnings"] = f"{outcome.warnings} logged, one line each"
    say(
        f"summary: {outcome.played_for:.1f} s of activity, {outcome.settled}; "
        f"{seconds:.1f} s in all"
    )
    for name, text in fields.items():
        say(f"  {name:<12}{text}")
    if not mismatches:
        say(f"every balance matches: {total} of {total}")
    else:
        say(f"balances that do not match: {len(mismatches)} of {total}")
        for line in mismatches[:SHOWN_MISMATCHES]:
            say(f"    {line}")
    return not mismatches and not repeated
