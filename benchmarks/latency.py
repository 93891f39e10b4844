"""How fast `syncd run` carries a change from one side to the other, on localhost.

    python benchmarks/latency.py [--changes N] [--rate R] [--customers C] [--seed S]

Starts the Wix and Square emulators in this process (zero latency, rate limits off, webhook
delivery faults off, no hold, a 1 ms sender tick), backfills with `syncd --reconcile`, starts
`syncd run` as a separate process, warms it up, then plays N changes at R changes per second on
C customers (a Wix site earn/redeem or a Square till sale, picked at random). It measures:

1. change -> both sides equal: from the change at its source (which queues its webhook at
   once) until both emulators hold the customer's expected balance. Measured by a listener on
   each emulator's model (called under the model's lock at every points change, syncd's
   writes included): no polling, no extra API traffic.
2. webhook acknowledgement: how long syncd took to answer each webhook POST, from the
   emulators' delivery attempt logs (`duration_ms`, whole ms) and, finer, from a timer around
   each POST.

Then it lets the daemon settle, checks every balance on both sides equals start + all changes
(loud FAIL and exit 1 otherwise), stops the daemon (SIGTERM, then kill) and prints a table.
Nothing here comes from tests/: it runs on its own. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

import syncd
from connectors.square.emulator import SquareEmulator
from syncd.sandbox import delivery
from syncd.sandbox.delivery import DeliveryAttempt
from syncd.sandbox.server import serve_in_thread
from syncd.sandbox.wire import utc_millis
from syncd.sandbox.wix import WixEmulator

SIGNATURE_KEY = "bench-signature-key"
READY_TIMEOUT = 30.0
WIX_CALLS = 'syncd_api_calls_total{remote="wix"}'
SHOP_CALLS = 'syncd_api_calls_total{remote="shop"}'
STOP_TIMEOUT = 15.0

# Only relative paths: the daemon runs with the scratch folder as its working directory, and
# the Wix public key is given inline.
CONFIG = '''
[database]
url = "sqlite:///syncd.db"
[wix]
base_url = "{wix_url}"
site_id = "{site_id}"
api_key = "{api_key}"
webhook_public_key = """
{pem}"""
requests_per_minute = 100000
timeout_seconds = 5.0
[sync]
poll_interval_seconds = {poll}
workers = {workers}
drift_check_cron = ""
[server]
host = "127.0.0.1"
port = {port}
[[connectors]]
name = "shop"
type = "square"
base_url = "{square_url}"
access_token = "{square_token}"
webhook_signature_key = "{signature_key}"
webhook_url = "{hook}"
requests_per_minute = 100000
timeout_seconds = 5.0
'''


# ---- figures --------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "count": float(len(values)),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
    }


# ---- the probe: listeners on both emulators' models -----------------------------------------


@dataclass
class Probe:
    """Mirrors every customer's balance on both sides from the models' own change listeners,
    and times each change until both sides show the customer's expected balance."""

    wix_index: dict[str, int]
    square_index: dict[str, int]
    start: list[int]
    expected: list[int] = field(default_factory=list)
    wix: list[int] = field(default_factory=list)
    square: list[int] = field(default_factory=list)
    pending: list[list[tuple[float, str]]] = field(default_factory=list)
    # (made at, seconds until both sides were equal, source side) of every change
    done: list[tuple[float, float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.expected = list(self.start)
        self.wix = list(self.start)
        self.square = list(self.start)
        self.pending = [[] for _ in self.start]

    def on_wix(self, change: Any) -> None:
        """Wix listener: `account_points_updated` and `account_updated` carry the account."""
        customer = self.wix_index.get(change.entity_id)
        if customer is None:
            return
        body = change.body
        account = body.get("currentEntity") or (body.get("body") or {}).get("account")
        if not account:
            return
        self._saw(customer, wix=int(account["points"]["balance"]))

    def on_square(self, change: Any) -> None:
        """Square listener: `loyalty.account.updated` carries the account."""
        if change.data_type != "loyalty_account":
            return
        customer = self.square_index.get(change.object_id)
        if customer is None:
            return
        self._saw(customer, square=int(change.object["loyalty_account"]["balance"]))

    def _saw(self, customer: int, *, wix: int | None = None, square: int | None = None) -> None:
        now = time.perf_counter()
        with self.lock:
            if wix is not None:
                self.wix[customer] = wix
            if square is not None:
                self.square[customer] = square
            waiting = self.pending[customer]
            if waiting and self.wix[customer] == self.square[customer] == self.expected[customer]:
                self.done.extend((started, now - started, side) for started, side in waiting)
                waiting.clear()

    def expect(self, customer: int, delta: int, side: str) -> None:
        """Record a change just before it is made (see `Bench.change`)."""
        with self.lock:
            self.expected[customer] += delta
            self.pending[customer].append((time.perf_counter(), side))

    def unexpect(self, customer: int, delta: int) -> None:
        """The change was refused at its source: forget it."""
        with self.lock:
            self.expected[customer] -= delta
            self.pending[customer].pop()

    def outstanding(self) -> int:
        with self.lock:
            return sum(len(p) for p in self.pending)


@dataclass
class SenderTimes:
    """Around each emulator's webhook POSTs: queueing before the first try, and answer time."""

    built: dict[str, float] = field(default_factory=dict)  # event id -> queued at
    queued: list[float] = field(default_factory=list)  # seconds from queued to first POST
    answered: list[float] = field(default_factory=list)  # seconds each POST took

    def instrument(self, dispatcher: Any) -> None:
        build, post = dispatcher.build, dispatcher._post

        def timed_build(change: Any) -> Any:
            event = build(change)
            self.built[event.event_id] = time.perf_counter()
            return event

        # `_post(client, url, event, attempt, ...)`: the trailing arguments (headers, and in
        # newer emulators the body text) are passed through as they are.
        async def timed_post(client: Any, url: str, event: Any, attempt: int, *rest: Any) -> Any:
            started = time.perf_counter()
            if attempt == 1 and event.event_id in self.built:
                self.queued.append(started - self.built.pop(event.event_id))
            result = await post(client, url, event, attempt, *rest)
            self.answered.append(time.perf_counter() - started)
            return result

        dispatcher.build = timed_build
        dispatcher._post = timed_post


def bounded_sender(dispatcher: Any, connections: int) -> None:
    """Give an emulator's webhook sender a client with at most `connections` connections.

    The sender starts every queued event at once on one httpx client. With httpx's default
    limit (100 connections) a burst opens many, and httpcore's pool bookkeeping costs
    O(connections^2) on every request it adds or removes (a readability check of every
    connection): at 40 changes/s this process spent a quarter of its time there."""
    transport = dispatcher.transport
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    dispatcher._client = lambda: httpx.AsyncClient(transport=transport, limits=limits)


class LeanSender:
    """The webhook POSTs of one emulator's sender, over plain HTTP/1.1 keep-alive connections
    (at most `connections`), instead of its httpx client (`--sender lean`).

    This process plays every change and runs both emulators on one core. Through httpx each
    webhook cost it about 1 ms, and a change makes four: at 100 changes/s the senders alone
    would need most of the core, and the daemon would be measured waiting for webhooks that
    were not sent yet. The bytes syncd receives are the same (method, path, headers, body);
    the answer is read whole (`content-length`), and each POST makes one `DeliveryAttempt`
    as the emulator's own `_post` does (same timeout, same `error` words). When a kept
    connection turns out closed by the daemon (nothing read from it), the kept ones are
    dropped and the POST goes on a new connection."""

    def __init__(self, dispatcher: Any, connections: int) -> None:
        self.dispatcher = dispatcher
        self.connections = connections
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots: asyncio.Semaphore | None = None

    def install(self) -> None:
        self.dispatcher._post = self.post

    async def post(
        self, client: Any, url: str, event: Any, attempt: int, text: str, headers: Any
    ) -> Any:
        timeout = self.dispatcher.knobs.webhook_timeout_seconds
        started = time.monotonic()
        at = utc_millis(self.dispatcher.clock())
        status: int | None = None
        error: str | None = None
        try:
            status = await asyncio.wait_for(self._send(url, text.encode(), headers), timeout)
        except TimeoutError:
            error = "timeout"
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        elapsed = time.monotonic() - started
        if error is None and elapsed > timeout:
            error = "timeout"
        return DeliveryAttempt(
            event.event_id, event.event_type, attempt, url, status, error, int(elapsed * 1000), at
        )

    async def _send(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        if self.slots is None:
            self.slots = asyncio.Semaphore(self.connections)
        target = urlsplit(url)
        lines = [f"POST {target.path or '/'} HTTP/1.1", f"host: {target.netloc}"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "content-length"]
        lines.append(f"content-length: {len(body)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        async with self.slots:
            for _ in range(2):
                kept = bool(self.idle)
                reader, writer = (
                    self.idle.pop()
                    if kept
                    else await asyncio.open_connection(target.hostname, target.port)
                )
                try:
                    writer.write(request)
                    status_line = await reader.readline()
                    if not status_line and kept:
                        # The daemon closed this kept connection (idle too long), and so
                        # likely every other kept one: drop them all, use a new one.
                        for _reader, stale in [(reader, writer), *self.idle]:
                            stale.close()
                        self.idle.clear()
                        continue
                    status, close = await self._read_answer(reader, status_line)
                except BaseException:
                    writer.close()
                    raise
                if close:
                    writer.close()
                else:
                    self.idle.append((reader, writer))
                return status
        raise ConnectionError("the daemon closed two connections in a row")

    @staticmethod
    async def _read_answer(reader: asyncio.StreamReader, status_line: bytes) -> tuple[int, bool]:
        """The status, and whether the connection must be closed; the body is read whole."""
        parts = status_line.split()
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ValueError(f"not an HTTP answer: {status_line[:60]!r}")
        length, close = 0, parts[0] == b"HTTP/1.0"
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection":
                close = value == "close"
            elif name == "transfer-encoding":
                raise ValueError("chunked answers are not expected from syncd's intake")
        await reader.readexactly(length)
        return int(parts[1]), close


class Timed:
    """ASGI wrapper timing each API request an emulator serves (arrival to last body byte),
    so syncd's own time can be told from the emulators'."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seconds: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.seconds.append(time.perf_counter() - started)


# ---- the run ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}


def quiet_emulator(emulator: WixEmulator | SquareEmulator) -> None:
    """Zero latency, no rate limit, no request or delivery faults, no hold before sending."""
    knobs = emulator.knobs
    knobs.requests_per_minute = 0
    knobs.faults.latency_ms = 0
    knobs.faults.error_rate = 0.0
    knobs.faults.fail_after_commit_rate = 0.0
    knobs.faults.timeout_after_commit_rate = 0.0
    knobs.delivery.duplicate_rate = 0.0
    knobs.delivery.drop_rate = 0.0
    knobs.delivery.reorder_window = 0
    knobs.delivery.delay_ms = 0
    knobs.webhook_hold_ms = 0


@dataclass
class Bench:
    args: argparse.Namespace
    wix: WixEmulator
    square: SquareEmulator
    pairs: list[tuple[str, str]]
    probe: Probe
    senders: dict[str, SenderTimes]
    served: dict[str, Timed]
    lateness: list[float] = field(default_factory=list)  # how late each change was played

    def play(self, count: int, rng: random.Random) -> float:
        """Play `count` changes at a steady rate; returns the seconds it took."""
        interval = 1 / self.args.rate
        began = time.perf_counter()
        for k in range(count):
            due = began + k * interval
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            self.lateness.append(max(time.perf_counter() - due, 0.0))
            self.change(rng)
        return time.perf_counter() - began

    def change(self, rng: random.Random) -> None:
        """One customer acts at one side: online (Wix earn, or redeem when the balance allows)
        or at the till (a Square sale). The probe learns of it before it is made, so the
        listener that fires inside the call already knows what to expect."""
        customer = rng.randrange(len(self.pairs))
        wix_id, square_id = self.pairs[customer]
        if rng.random() < 0.5:
            with self.probe.lock:
                wix_balance = self.probe.wix[customer]
            if wix_balance >= 10 and rng.random() < 0.4:
                kind, delta = "redeem", -rng.randint(1, 10)
            else:
                kind, delta = "earn", rng.randint(1, 50)
            self.probe.expect(customer, delta, "wix")
            try:
                self.wix.activity(wix_id, kind, abs(delta))
            except Exception:
                self.probe.unexpect(customer, delta)
                raise
        else:
            delta = rng.randint(1, 60)
            self.probe.expect(customer, delta, "square")
            try:
                self.square.activity(square_id, "sale", delta)
            except Exception:
                self.probe.unexpect(customer, delta)
                raise

    def forget_figures(self) -> None:
        """Start the figures afresh (after the warm-up)."""
        with self.probe.lock:
            self.probe.done.clear()
        self.lateness.clear()
        for sender in self.senders.values():
            sender.queued.clear()
            sender.answered.clear()
        for timed in self.served.values():
            timed.seconds.clear()

    def settle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.probe.outstanding() and not self.mismatches():
                return True
            time.sleep(0.05)
        return False

    def mismatches(self) -> list[tuple[int, int, int, int]]:
        """(customer, Wix, Square, expected) for every customer not at start + all changes,
        read from the emulators' real state (not the probe's mirror)."""
        wix = {a["id"]: int(a["points"]["balance"]) for a in self.wix.state.all_accounts()}
        square = {a["id"]: int(a["balance"]) for a in self.square.accounts()}
        with self.probe.lock:
            expected = list(self.probe.expected)
        wrong = []
        for customer, (wix_id, square_id) in enumerate(self.pairs):
            got = (wix[wix_id], square[square_id])
            if got != (expected[customer],) * 2:
                wrong.append((customer, *got, expected[customer]))
        return wrong


class Daemon:
    """`syncd run` as a child process, its output in a log file."""

    def __init__(self, config: Path, workdir: Path, port: int) -> None:
        self.config = config
        self.workdir = workdir
        self.port = port
        self.log = workdir / "syncd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def syncd(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "syncd", *args, "--config", str(self.config)],
            cwd=self.workdir,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "syncd", "run", "--config", str(self.config)],
                cwd=self.workdir,
                env=clean_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"syncd run exited early:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"syncd run never became ready:\n{self.log.read_text()[-3000:]}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metrics(self) -> dict[str, float]:
        """The daemon's counters and gauges, `name{labels}` -> value."""
        try:
            text = httpx.get(f"{self.url}/metrics", timeout=5).text
        except httpx.HTTPError:
            return {}
        found = {}
        for line in text.splitlines():
            match = re.match(r"^(\w+(?:\{[^}]*\})?) (\S+)$", line)
            if match:
                found[match.group(1)] = float(match.group(2))
        return found

    def cpu_seconds(self) -> float:
        """User + system CPU the daemon has used so far (Linux /proc; 0 elsewhere)."""
        if self.process is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited in time; the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
        return self.process.returncode


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as folder:
        yield Path(folder)


def run(args: argparse.Namespace) -> int:
    # The emulators' background senders look for queued events every POLL_SECONDS (20 ms);
    # a benchmark of syncd should not wait on that tick, so it is shortened here.
    delivery.POLL_SECONDS = args.sender_tick_ms / 1000
    port = free_port()
    hook = f"http://127.0.0.1:{port}/webhooks"
    wix = WixEmulator(seed=args.seed, webhook_url=f"{hook}/wix")
    wix.activate()
    square = SquareEmulator(
        seed=args.seed + 1, webhook_url=f"{hook}/shop", signature_key=SIGNATURE_KEY
    )
    for emulator in (wix, square):
        quiet_emulator(emulator)
    rng = random.Random(args.seed)
    start = [rng.randint(0, 400) for _ in range(args.customers)]
    wix_accounts = wix.seed_accounts(
        [{"email": f"bench{i}@example.com", "balance": b} for i, b in enumerate(start)]
    )
    square_accounts = square.seed_accounts(
        [
            {"email": f"bench{i}@example.com", "phone": f"+1415666{i:04d}", "balance": b}
            for i, b in enumerate(start)
        ]
    )
    pairs = [(w["id"], s["id"]) for w, s in zip(wix_accounts, square_accounts, strict=True)]
    probe = Probe(
        wix_index={w: i for i, (w, _s) in enumerate(pairs)},
        square_index={s: i for i, (_w, s) in enumerate(pairs)},
        start=start,
    )
    for emulator in (wix, square):
        emulator.webhooks.reset()  # activation's program_updated: nobody listens yet
    wix.state.listeners.append(probe.on_wix)
    square.state.listeners.append(probe.on_square)
    senders = {"wix": SenderTimes(), "square": SenderTimes()}
    for emulator in (wix, square):
        if args.sender == "lean":
            LeanSender(emulator.webhooks, args.sender_connections).install()
        else:
            bounded_sender(emulator.webhooks, args.sender_connections)
    senders["wix"].instrument(wix.webhooks)
    senders["square"].instrument(square.webhooks)
    served = {"wix": Timed(wix.app), "square": Timed(square.app)}
    bench = Bench(args, wix, square, pairs, probe, senders, served)

    with (
        scratch() as workdir,
        serve_in_thread(served["wix"]) as wix_at,
        serve_in_thread(served["square"]) as square_at,
    ):
        config = workdir / "syncd.toml"
        config.write_text(
            CONFIG.format(
                wix_url=wix_at.url,
                site_id=wix.credentials.site_id,
                api_key=wix.credentials.api_key,
                pem=wix.public_key_pem.strip(),
                poll=args.poll_seconds,
                workers=args.workers,
                port=port,
                square_url=square_at.url,
                square_token=square.access_token,
                signature_key=SIGNATURE_KEY,
                hook=f"{hook}/shop",
            )
        )
        daemon = Daemon(config, workdir, port)
        print(f"backfill: syncd --reconcile ({args.customers} customers) ...", flush=True)
        backfill = daemon.syncd("--reconcile")
        linked = f"linked        {args.customers} "
        if backfill.returncode != 0 or linked not in backfill.stdout:
            print(backfill.stdout + backfill.stderr, file=sys.stderr)
            print("FAIL: the backfill did not link every customer", file=sys.stderr)
            return 1
        # The backfill writes nothing (balances start equal); forget anything it queued.
        for emulator in (wix, square):
            emulator.webhooks.reset()
        rng = random.Random(args.seed + 2)
        try:
            daemon.start()
            if args.warmup:
                print(f"warm-up: {args.warmup} changes ...", flush=True)
                bench.play(args.warmup, rng)
                bench.settle(args.settle_timeout)
                time.sleep(0.5)  # the echoes of the last writes
            bench.forget_figures()
            first_attempt = {
                "wix": len(wix.webhooks.attempts),
                "square": len(square.webhooks.attempts),
            }
            metrics_before = daemon.metrics()
            cpu_before = (time.process_time(), daemon.cpu_seconds(), time.perf_counter())
            print(
                f"playing {args.changes} changes at {args.rate:g}/s on {args.customers} "
                f"customers ...",
                flush=True,
            )
            played = bench.play(args.changes, rng)
            settle_started = time.perf_counter()
            settled = bench.settle(args.settle_timeout)
            settle_seconds = time.perf_counter() - settle_started
            cpu = (
                time.process_time() - cpu_before[0],
                daemon.cpu_seconds() - cpu_before[1],
                time.perf_counter() - cpu_before[2],
            )
            metrics = daemon.metrics()
            metrics = {k: v - metrics_before.get(k, 0.0) for k, v in metrics.items()}
        finally:
            code = daemon.stop()
        wrong = bench.mismatches()
        log_text = daemon.log.read_text(errors="replace")
        if args.keep_log:
            Path(args.keep_log).write_text(log_text)

    attempts = {
        "wix": wix.webhooks.attempts[first_attempt["wix"] :],
        "square": square.webhooks.attempts[first_attempt["square"] :],
    }
    figures = report(
        args,
        bench,
        attempts,
        metrics,
        played=played,
        settle_seconds=settle_seconds,
        cpu=cpu,
        exit_code=code,
    )
    outcome = verdict(probe, attempts, wrong, settled, log_text, code)
    if args.json:
        figures["ok"] = outcome == 0
        Path(args.json).write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
        print(f"figures written to {args.json}")
    return outcome


def verdict(
    probe: Probe,
    attempts: dict[str, list[Any]],
    wrong: list[tuple[int, int, int, int]],
    settled: bool,
    log_text: str,
    code: int | None,
) -> int:
    """FAIL (exit 1) when a balance is wrong; WARN for anything else that looks off."""
    failures = []
    if not settled or wrong:
        failures.append(f"{len(wrong)} customer(s) not at start + all changes: {wrong[:10]}")
    if probe.outstanding():
        failures.append(f"{probe.outstanding()} change(s) never seen equal on both sides")
    warnings = []
    refused = [a for side in attempts.values() for a in side if not a.ok]
    if refused:
        warnings.append(
            f"{len(refused)} webhook attempt(s) not answered 2xx in time: {refused[:3]}"
        )
    running, _, stopping = log_text.partition('"daemon.stopping"')
    if "Traceback" in running:
        failures.append("the daemon logged a traceback while running (log below)")
    elif "Traceback" in stopping:
        warnings.append("the daemon logged a traceback while stopping (log below)")
    if code != 0:
        warnings.append(f"the daemon exited {code} after SIGTERM (-9: it had to be killed)")
    for warning in warnings:
        print(f"WARN: {warning}", file=sys.stderr)
    if failures:
        print("\n" + "!" * 72, file=sys.stderr)
        for failure in failures:
            print(f"FAIL: {failure}", file=sys.stderr)
        print("!" * 72, file=sys.stderr)
    if failures or warnings:
        print(f"daemon log (tail):\n{log_text[-4000:]}", file=sys.stderr)
    if failures:
        return 1
    print("\nOK: every balance equals start + all changes on both sides")
    return 0


def report(
    args: argparse.Namespace,
    bench: Bench,
    attempts: dict[str, list[Any]],
    metrics: dict[str, float],
    *,
    played: float,
    settle_seconds: float,
    cpu: tuple[float, float, float],
    exit_code: int | None,
) -> dict[str, Any]:
    """Print the figures; return them as a flat dict (what `--json` writes)."""
    ms = 1000.0
    rows: list[tuple[str, dict[str, float]]] = []
    done = bench.probe.done
    rows.append(("change -> both sides equal (all)", summary([s * ms for _, s, _ in done])))
    for side, label in (("wix", "  from a Wix site change"), ("square", "  from a Square sale")):
        rows.append((label, summary([s * ms for _, s, src in done if src == side])))
    every_try = [a.duration_ms for side in attempts.values() for a in side]
    rows.append(("webhook ack, attempt log duration_ms", summary(every_try)))
    for side in ("wix", "square"):
        rows.append((f"  to {side} webhooks", summary([a.duration_ms for a in attempts[side]])))
    fine = [s * ms for sender in bench.senders.values() for s in sender.answered]
    rows.append(("webhook ack, timed around each POST", summary(fine)))
    queued = [s * ms for sender in bench.senders.values() for s in sender.queued]
    rows.append(("emulator sender queueing (change->POST)", summary(queued)))
    for side in ("wix", "square"):
        api = [s * ms for s in bench.served[side].seconds]
        rows.append((f"{side} emulator API answer (server side)", summary(api)))
    rows.append(("driver lateness (due->played)", summary([s * ms for s in bench.lateness])))

    print()
    print(f"{'figure (ms)':42} {'count':>6} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}")
    print("-" * 84)
    for label, figures in rows:
        cells = " ".join(f"{figures[k]:8.1f}" for k in ("p50", "p90", "p99", "max"))
        print(f"{label:42} {int(figures['count']):6d} {cells}")
    print()
    if done:
        first = min(t for t, _, _ in done)
        slices: dict[int, list[float]] = {}
        for made, seconds, _ in done:
            slices.setdefault(int((made - first) // 5), []).append(seconds * ms)
        parts = [
            f"{k * 5}-{k * 5 + 5}s {percentile(v, 50):.0f}/{percentile(v, 99):.0f}"
            for k, v in sorted(slices.items())
        ]
        print("latency p50/p99 ms by when the change was made: " + ", ".join(parts))
        print()
    retries = sum(1 for side in attempts.values() for a in side if a.attempt > 1)

    def counter(name: str) -> int:
        return int(sum(v for k, v in metrics.items() if k.startswith(name)))

    webhooks = counter("syncd_webhooks_received_total")
    syncs = counter("syncd_syncs_total")
    cpu_per_change = cpu[1] * ms / args.changes

    facts = [
        ("changes played", f"{args.changes} in {played:.1f} s ({args.changes / played:.1f}/s)"),
        ("customers", str(args.customers)),
        ("settled after the last change", f"{settle_seconds:.2f} s"),
        ("webhook attempts (retries)", f"{sum(len(a) for a in attempts.values())} ({retries})"),
        (
            "daemon: webhooks stored / syncs / writes",
            f"{counter('syncd_webhooks_received_total')} / {counter('syncd_syncs_total')} / "
            f"{counter('syncd_writes_total')}",
        ),
        (
            "daemon: API calls wix / square",
            f"{counter(WIX_CALLS)} / {counter(SHOP_CALLS)}",
        ),
        ("daemon: polled changes", str(counter("syncd_polled_changes_total"))),
        (
            "CPU while playing+settling: daemon / here",
            f"{cpu[1]:.1f} s / {cpu[0]:.1f} s of {cpu[2]:.1f} s wall "
            f"({cpu[1] / cpu[2]:.0%} / {cpu[0] / cpu[2]:.0%} of one core)",
        ),
        (
            "daemon CPU per change / webhook / sync",
            f"{cpu_per_change:.1f} ms / {cpu[1] * ms / max(webhooks, 1):.2f} ms / "
            f"{cpu[1] * ms / max(syncs, 1):.2f} ms (all of it, divided by each count)",
        ),
        ("daemon exit code after SIGTERM", str(exit_code)),
        (
            "settings",
            f"workers={args.workers} poll_interval={args.poll_seconds}s "
            f"sender_tick={args.sender_tick_ms:g}ms sender={args.sender} "
            f"sender_connections={args.sender_connections} "
            f"warmup={args.warmup} seed={args.seed}",
        ),
        ("syncd", f"{syncd.__version__} at commit {commit()}"),
        ("machine", f"{os.cpu_count()} CPUs, {platform.platform()}"),
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
    ]
    for name, value in facts:
        print(f"{name:42} {value}")
    latency = summary([s * ms for _, s, _ in done])
    print(
        f"\nchange -> equal at {args.rate:g}/s: p50 {latency['p50']:.1f} ms, "
        f"p90 {latency['p90']:.1f} ms, p99 {latency['p99']:.1f} ms; "
        f"daemon CPU {cpu_per_change:.1f} ms per change"
    )
    acks = summary(every_try)
    return {
        "rate": args.rate,
        "rate_played": args.changes / played,
        "changes": args.changes,
        "customers": args.customers,
        "workers": args.workers,
        "poll_seconds": args.poll_seconds,
        "seed": args.seed,
        "latency_p50_ms": latency["p50"],
        "latency_p90_ms": latency["p90"],
        "latency_p99_ms": latency["p99"],
        "latency_max_ms": latency["max"],
        "completed": int(latency["count"]),
        "ack_p50_ms": acks["p50"],
        "ack_p99_ms": acks["p99"],
        "ack_max_ms": acks["max"],
        "settle_seconds": settle_seconds,
        "webhook_attempts": sum(len(a) for a in attempts.values()),
        "webhook_retries": retries,
        "webhooks_stored": webhooks,
        "syncs": syncs,
        "writes": counter("syncd_writes_total"),
        "api_calls_wix": counter(WIX_CALLS),
        "api_calls_square": counter(SHOP_CALLS),
        "polled_changes": counter("syncd_polled_changes_total"),
        "daemon_cpu_seconds": cpu[1],
        "daemon_cpu_ms_per_change": cpu_per_change,
        "daemon_cpu_share": cpu[1] / cpu[2],
        "driver_cpu_share": cpu[0] / cpu[2],
        "wall_seconds": cpu[2],
        "daemon_exit_code": exit_code,
        "commit": commit(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def commit() -> str:
    """The repository's HEAD commit (short), or "?" outside a git checkout."""
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except OSError:
        return "?"
    return found.stdout.strip() or "?"


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=400, help="changes to play (400)")
    parser.add_argument("--rate", type=float, default=20.0, help="changes per second (20)")
    parser.add_argument("--customers", type=int, default=50, help="linked customers (50)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (1)")
    parser.add_argument("--workers", type=int, default=4, help="sync.workers (4, the default)")
    parser.add_argument(
        "--poll-seconds",
        type=int,
        default=30,
        help="sync.poll_interval_seconds (30, the default): the polling safety net",
    )
    parser.add_argument(
        "--sender-tick-ms",
        type=float,
        default=1.0,
        help="how often the emulators' webhook senders look for queued events (1; theirs: 20)",
    )
    parser.add_argument(
        "--sender",
        choices=("lean", "httpx"),
        default="lean",
        help="how the emulators POST webhooks: plain keep-alive HTTP/1.1 (lean, the default: "
        "cheap enough for 100 changes/s) or their own httpx client (httpx, as before)",
    )
    parser.add_argument(
        "--sender-connections",
        type=int,
        default=16,
        help="connections each emulator's webhook sender may open (16; httpx's default: 100)",
    )
    parser.add_argument(
        "--warmup", type=int, default=20, help="changes played first, not measured (20)"
    )
    parser.add_argument(
        "--settle-timeout", type=float, default=20.0, help="seconds to wait at the end (20)"
    )
    parser.add_argument(
        "--keep-log", metavar="PATH", help="copy the daemon's log to PATH before cleaning up"
    )
    parser.add_argument(
        "--json", metavar="PATH", help="also write the figures to PATH as one flat JSON object"
    )
    args = parser.parse_args(argv)
    if args.changes < 1 or args.rate <= 0 or args.customers < 1 or args.warmup < 0:
        parser.error("--changes, --rate and --customers must be positive, --warmup not negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse(argv))


if __name__ == "__main__":
    sys.exit(main())
