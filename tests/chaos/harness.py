"""One chaos run per seed: the shop, the backfill and the daemons under fire, then the checks.

    result = run_seed(7, ChaosOptions(customers=200, replicas=1))
    result.violations      # [] when syncd neither lost nor doubled a point

A run, step by step:
1. both emulators on localhost ports, seeded from the seed, faults on (see `world.FaultPlan`);
2. `syncd --reconcile` under the same faults, SIGKILLed once on some seeds, run again until it
   exits 0; then every customer must be linked with the balance the backfill promises;
3. `replicas` `syncd run` processes behind the webhook relay, while the workload plays and a
   random replica is SIGKILLed at random moments (`kills` at least) and restarted;
4. with several replicas one more is killed and left dead; faults off; wait until quiet (no
   dirty link, no unresolved write, nothing to match, balances still for a few polls); check.

Deterministic per seed as far as process timing allows: the customers, the workload, the kill
and fault schedules and the emulators' fault rolls all come from the seed; what the daemons
happen to be doing when a kill lands does not.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from syncd.sandbox.server import serve_in_thread
from tests.chaos import checks, report
from tests.chaos.daemons import (
    CONNECTOR,
    POLL_SECONDS,
    Fleet,
    Relay,
    Replica,
    backfill,
    write_config,
)
from tests.chaos.world import FaultPlan, Shop, Workload, injected
from tests.databases import postgres_schema

# httpcore tries `import sniffio` for every lock it makes; where sniffio is not installed each
# try walks sys.path, which costs the emulators' webhook senders more than their work: record
# the miss once for this process.
if importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

TICK_SECONDS = 0.02
SAMPLE_SECONDS = 0.25
QUIET_SECONDS = 3.0 * POLL_SECONDS  # balances unchanged this long: settled
POLL_TURN = timedelta(seconds=POLL_SECONDS * 0.8)  # syncd.runtime.scheduler's poll_turn


@dataclass(frozen=True)
class ChaosOptions:
    customers: int = 200
    ops: int = 300
    kills: int = 12
    replicas: int = 1
    postgres: str | None = None  # with replicas > 1: a PostgreSQL server URL
    uptime: tuple[float, float] = (0.8, 3.5)  # seconds from a (re)start or kill to the next
    downtime: tuple[float, float] = (0.1, 0.8)  # a killed replica stays down this long
    settle_seconds: float = 120.0
    keep: Path | None = None  # copy logs of a run with violations here


@dataclass
class SeedResult:
    seed: int
    replicas: int
    customers: int = 0
    played: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    backfill_runs: int = 0
    backfill_kills: int = 0
    backfill_failures: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    conflicts: int = 0
    held_points: int = 0
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    settle_seconds: float = 0.0
    phases: tuple[float, float] = (0.0, 0.0)  # seconds of backfill, of chaos

    @property
    def ops(self) -> int:
        return sum(self.played.values())


@contextlib.contextmanager
def _database(options: ChaosOptions, folder: Path) -> Iterator[str]:
    if options.postgres:
        yield from postgres_schema(options.postgres)
    else:
        yield f"sqlite:///{folder / 'syncd.db'}"


def run_seed(seed: int, options: ChaosOptions, say: Callable[[str], None] = print) -> SeedResult:
    """One full chaos run; the result lists every violation found."""
    started = time.monotonic()
    result = SeedResult(seed, options.replicas)
    shop = Shop.build(seed, options.customers)
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="syncd-chaos-")))
        database = stack.enter_context(_database(options, folder))
        wix_at = stack.enter_context(serve_in_thread(shop.wix.app))
        square_at = stack.enter_context(serve_in_thread(shop.square.app))
        targets: list[str] = []
        relay = Relay(lambda: targets)
        relay_at = stack.enter_context(serve_in_thread(relay.app()))
        config = write_config(folder, shop, database, wix_at.url, square_at.url, relay_at.url)
        fleet = Fleet(config, folder, options.replicas)
        targets.extend(fleet.urls())
        shop.wix.webhooks.url = f"{relay_at.url}/webhooks/wix"
        shop.square.webhooks.url = f"{relay_at.url}/webhooks/{CONNECTOR}"
        engine = checks.reader(database)
        stack.callback(engine.dispose)
        stack.callback(fleet.stop)
        run = _Run(seed, options, shop, fleet, engine, result)
        try:
            run.go()
        finally:
            result.crashes = fleet.crashes
            result.kills = fleet.kills
            result.faults = injected(shop, run.faults)
            result.played = run.workload.played
            result.customers = len(shop.customers)
            if options.replicas > 1:
                by_replica = dict(sorted((targets.index(t), n) for t, n in relay.taken.items()))
                result.notes.append(
                    f"webhooks relayed by replica {by_replica}; {relay.refused} answered 502 "
                    "while no replica listened (mostly the backfill's, before any daemon ran)"
                )
            if result.violations and options.keep:
                _keep(folder, options.keep / f"seed-{seed}", shop, engine)
    result.seconds = time.monotonic() - started
    say(report.row(result))
    return result


def run_quietly(seed: int, options: ChaosOptions) -> SeedResult:
    """`run_seed` printing nothing (for a pool of worker processes)."""
    return run_seed(seed, options, say=lambda line: None)


class _Run:
    def __init__(
        self,
        seed: int,
        options: ChaosOptions,
        shop: Shop,
        fleet: Fleet,
        engine: Engine,
        result: SeedResult,
    ) -> None:
        self.options = options
        self.shop = shop
        self.fleet = fleet
        self.engine = engine
        self.result = result
        self.rng = random.Random(f"{seed}:kills")
        self.workload = Workload(shop, random.Random(f"{seed}:workload"))
        self.faults = FaultPlan(shop, random.Random(f"{seed}:faults"))
        self.sampler = checks.Sampler(engine)
        self.restart_at: dict[int, float] = {}
        self.sampled_at = 0.0

    def go(self) -> None:
        self.faults.steady()
        began = time.monotonic()
        if not self._backfill():
            return
        backfilled = time.monotonic()
        for replica in self.fleet.replicas:
            self.fleet.start(replica)
        self._chaos()
        if self.options.replicas > 1:
            self._retire_one()
        chaos_over = time.monotonic()
        self.faults.off()
        self._settle()
        self._check()
        self.result.phases = (backfilled - began, chaos_over - backfilled)

    # -- 2. the backfill ---------------------------------------------------------------------

    def _backfill(self) -> bool:
        kill_after = self.rng.uniform(1.2, 3.0) if self.rng.random() < 0.5 else None
        log = self.fleet.config.parent / "reconcile.log"
        outcome = backfill(self.fleet.config, log, kill_after=kill_after)
        self.result.backfill_runs = outcome.attempts
        self.result.backfill_kills = outcome.killed
        self.result.backfill_failures = outcome.failures
        if outcome.failures and len(outcome.failures) + outcome.killed >= outcome.attempts:
            self.result.violations.append(
                f"the backfill never exited 0 in {outcome.attempts} runs: {outcome.failures[-1]}"
            )
            return False
        store = checks.Store.read(self.engine)
        found = checks.balances(self.shop, store) + checks.writes(self.shop, store)
        self.result.violations += [f"after the backfill: {line}" for line in found]
        return True

    # -- 3. the workload under fire ----------------------------------------------------------

    def _chaos(self) -> None:
        options, rng = self.options, self.rng
        play_seconds = options.kills * sum(options.uptime) / 2 + 2.0
        next_op = next_kill = time.monotonic()
        next_kill += rng.uniform(*options.uptime)
        while self.workload.total < options.ops or self.fleet.kills < options.kills:
            now = time.monotonic()
            if self.workload.total < options.ops and now >= next_op:
                self.workload.step()
                next_op += rng.expovariate(options.ops / play_seconds)
            if self.fleet.kills < options.kills and now >= next_kill:
                up = [r for r in self.fleet.replicas if r.up]
                if up:
                    victim = rng.choice(up)
                    self.fleet.kill(victim)
                    self.restart_at[victim.number] = now + rng.uniform(*options.downtime)
                next_kill = now + rng.uniform(*options.uptime) / options.replicas
            self._keep_up(now)
            self.faults.tick(now)
            self._sample(now)
            time.sleep(TICK_SECONDS)
        while self.restart_at:
            self._keep_up(time.monotonic() + 10)

    def _keep_up(self, now: float) -> None:
        """Restart the replicas whose downtime is over, and any that exited by itself."""
        for replica in self.fleet.crashed():
            self.restart_at[replica.number] = now + 0.5
        for number, when in list(self.restart_at.items()):
            if now >= when:
                del self.restart_at[number]
                self.fleet.start(self.fleet.replicas[number])

    def _sample(self, now: float) -> None:
        if now - self.sampled_at >= SAMPLE_SECONDS:
            self.sampled_at = now
            self.sampler.sample()

    def _retire_one(self) -> None:
        """With replicas: a burst of changes, then one replica is killed in the middle of
        them and left dead; the others must finish its work (its leases expire)."""
        for _ in range(20):
            self.workload.step()
        victim: Replica = self.rng.choice(self.fleet.replicas)
        deadline = time.monotonic() + 15
        while not self.fleet.ready(victim) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(self.rng.uniform(0.1, 0.6))
        owner = self.fleet.owner_of(victim)
        held = checks.lease_holders(self.engine).get(owner, 0)
        self.fleet.kill(victim)
        victim.retired = True
        self.result.notes.append(f"replica {victim.number} killed for good holding {held} leases")

    # -- 4. settle and check -----------------------------------------------------------------

    def _settle(self) -> None:
        started = time.monotonic()
        deadline = started + self.options.settle_seconds
        last: tuple[object, ...] = ()
        still_since = time.monotonic()
        state = checks.busy(self.engine)
        while time.monotonic() < deadline:
            now = time.monotonic()
            self._keep_up(now)
            self._sample(now)
            state = checks.busy(self.engine)
            queued = len(self.shop.wix.webhooks.pending) + len(self.shop.square.webhooks.pending)
            snapshot = self._balances()
            if snapshot != last or not state.idle or queued:
                last, still_since = snapshot, now
            elif now - still_since >= QUIET_SECONDS:
                self.result.settle_seconds = now - started
                return
            time.sleep(0.2)
        self.result.settle_seconds = time.monotonic() - started
        self.result.violations.append(
            f"not settled after {self.options.settle_seconds:g} s: {state.dirty} dirty links, "
            f"{state.unresolved} unresolved writes, {state.unmatched} accounts to match"
        )

    def _balances(self) -> tuple[object, ...]:
        wix = tuple(a["points"]["balance"] for a in self.shop.wix.state.all_accounts())
        square = tuple(a["balance"] for a in self.shop.square.accounts())
        return wix, square

    def _check(self) -> None:
        store = checks.Store.read(self.engine)
        found = (
            checks.balances(self.shop, store)
            + checks.writes(self.shop, store)
            + checks.webhooks(self.shop, store)
            + checks.leases(store)
            + checks.turns(self.sampler, POLL_TURN)
        )
        self.result.violations += found
        self.result.conflicts = len(store.open_conflicts)
        self.result.held_points = sum(abs(c.amount or 0) for c in store.open_conflicts)
        if self.options.replicas > 1:
            owners = self.fleet.owners()
            by_replica = Counter(owners.get(o, -1) for o in self.sampler.turn_owners().elements())
            leased = Counter(owners.get(o, -1) for o in self.sampler.lease_owners.elements())
            self.result.notes.append(
                f"job turns by replica {dict(sorted(by_replica.items()))}, "
                f"leases seen by replica {dict(sorted(leased.items()))}"
            )


def _keep(folder: Path, target: Path, shop: Shop, engine: Engine) -> None:
    """Logs, the store (the SQLite file, and every table as JSON) and both emulators'
    ledgers and webhook logs, for a post-mortem."""
    target.mkdir(parents=True, exist_ok=True)
    store = checks.Store.read(engine)
    rows = {
        "links": [link.model_dump() for link in store.links],
        "operations": [op.model_dump() for op in store.operations],
        "conflicts": [conflict.model_dump() for conflict in store.conflicts],
        "inbox": sorted(store.inbox),
    }
    (target / "store.json").write_text(json.dumps(rows, indent=1, default=str))
    for log in folder.glob("*.log"):
        (target / log.name).write_bytes(log.read_bytes())
    database = folder / "syncd.db"
    if database.exists():  # the backup API takes the write-ahead log along
        with sqlite3.connect(database) as source, sqlite3.connect(target / "syncd.db") as copy:
            source.backup(copy)
    emulators = {
        "customers": [vars(c) for c in shop.customers],
        "wix_accounts": shop.wix.state.all_accounts(),
        "wix_transactions": shop.wix.state.all_transactions(),
        "wix_webhooks": shop.wix.webhooks.log(),
        "square_accounts": shop.square.accounts(),
        "square_events": shop.square.events(),
        "square_webhooks": shop.square.webhooks.log(),
    }
    (target / "emulators.json").write_text(json.dumps(emulators, indent=1, default=str))
