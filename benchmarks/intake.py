"""How many verified Wix webhooks `syncd run` takes per second, how fast it answers, and that it
loses none.

    python benchmarks/intake.py [--rate 500] [--seconds 10] [--max-seconds 10]
                                [--connections 32] [--accounts 500] [--max-budget 2500]
                                [--json PATH]

The issue's target: at least 1,000 verified Wix webhooks per second sustained on a 2-core
machine (load from a separate process on loopback), acknowledgement p99 under 50 ms at 500 per
second, and no event lost.

What runs where, and why:

- `syncd run` is a child process, its config, SQLite store and log in a temporary folder. The
  Wix and Square emulators run in this process (a thread each): the daemon needs Wix to call
  the program ACTIVE before it is ready, and real links to mark dirty.
- `--accounts` customers exist on both sides and `syncd --reconcile` links them all, so every
  webhook names a **linked** account and takes intake's full path: verify, store the event,
  mark the link dirty, processed, in one transaction. Webhooks for unlinked accounts are
  cheaper (no link to mark), so linked ones are the honest case.
- The workers sync the links those webhooks dirty, as in production, but spend Wix's API budget
  as in production too: `wix.requests_per_minute = 200`, Wix's real limit. A burst of 1,000
  webhooks a second can never be followed by 1,000 syncs a second against the real Wix (each
  sync reads the Wix account): the dirty links coalesce and drain at the budget. So syncing
  runs during the measurement but does not dominate it, exactly as it would not in a real
  burst. The polls (every hour) and the drift check (off) stay out of the way.
- The webhooks are real Wix webhooks: RS256 JWTs around the two JSON layers, made by the Wix
  emulator's own signer (`syncd.sandbox.wix.webhooks.EventSigner`) with the key whose public
  half the daemon is configured with; each has its own event id, each names one of the
  linked accounts. Signing (about 1 ms each) happens before any timed part, on every core.
- The load comes from a **separate process** on loopback that writes HTTP/1.1 keep-alive
  requests by hand on raw asyncio streams, so it costs little; its CPU is reported.
  (a) open loop: request i is due at start + i/rate whatever the answers do, each on an idle
  connection (one more is opened when none is idle); latency counts from when it was due, so
  a slow daemon cannot hide by slowing the sender down.
  (b) closed loop: `--connections` keep-alive connections each send the next webhook as soon
  as the previous one is answered, for `--max-seconds`: the sustained maximum.
- Afterwards the store is read: every event id acknowledged 2xx must be in `inbox_events`
  (a lost event fails the run: exit 1); refusals and the daemon's duplicate count are shown.
- CPU is read from /proc for the daemon (all its threads) and from getrusage for the load
  generator. The machine may be shared: the CPU milliseconds per webhook are the figure that
  other work on the same cores disturbs least. A default run takes about a minute.

`--json PATH` writes every figure as one flat dict: `webhooks_per_second` (closed loop),
`ack_p50_ms` / `ack_p99_ms` / `ack_max_ms` (open loop), `lost`, CPU shares, the machine and
the commit. Nothing here comes from tests/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import re
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
PATH = "/webhooks/wix"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
REQUEST_TIMEOUT = 30.0
IDLE_RECONNECT = 4.0  # seconds; uvicorn closes a keep-alive connection idle for 5
WARMUP_WEBHOOKS = 300
MAX_OPEN_LOOP_CONNECTIONS = 256
SIGNATURE_KEY = "bench-signature-key"

# Only relative paths: the daemon runs in the scratch folder; the Wix key is given inline.
CONFIG = '''
[database]
url = "sqlite:///syncd.db"
[wix]
base_url = "{wix_url}"
site_id = "{site_id}"
api_key = "{api_key}"
webhook_public_key = """
{pem}"""
requests_per_minute = {wix_rpm}
[sync]
poll_interval_seconds = 3600
workers = 4
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
webhook_url = "http://127.0.0.1:{port}/webhooks/shop"
'''


# ---- figures ------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# ---- pre-signed webhooks --------------------------------------------------------------------


def sign_chunk(
    job: tuple[str, dict[str, str], int, list[dict[str, Any]]],
) -> list[tuple[str, str]]:
    """Sign one Wix webhook per account wire given, as the Wix emulator does (in a pool
    process): (event id, JWT body) each. Event ids come from the signer's seeded id source."""
    from syncd.sandbox.wix.knobs import WixKnobs
    from syncd.sandbox.wix.model import Change
    from syncd.sandbox.wix.webhooks import EventSigner, SigningKeys
    from syncd.sandbox.wix.wire import IdFactory

    private_pem, site, seed, accounts = job
    signer = EventSigner(
        SigningKeys(private_pem),
        WixKnobs(),
        IdFactory(seed),
        instance_id=site["instance_id"],
        site_id=site["site_id"],
        app_id=site["app_id"],
    )
    now = datetime.now(UTC)
    signed = []
    for account in accounts:
        change = Change(
            event_type="wix.loyalty.v1.account_points_updated",
            entity_fqdn="wix.loyalty.v1.account",
            slug="points_updated",
            entity_id=account["id"],
            body_kind="actionEvent",
            body={"body": {"account": account}},
            origin="site",
            at=now,
        )
        webhook = signer.sign(change)
        signed.append((webhook.id, webhook.body))
    return signed


def presign(
    private_pem: str, site: dict[str, str], accounts: list[dict[str, Any]], count: int
) -> tuple[list[str], list[str]]:
    """`count` distinct signed webhooks over the accounts in turn: (event ids, bodies)."""
    workers = os.cpu_count() or 1
    step = max(1, -(-count // (workers * 4)))
    nonce = uuid.uuid4().int % 2**32
    jobs = [
        (
            private_pem,
            site,
            nonce + first,
            [accounts[i % len(accounts)] for i in range(first, min(first + step, count))],
        )
        for first in range(0, count, step)
    ]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        signed = [pair for chunk in pool.map(sign_chunk, jobs) for pair in chunk]
    event_ids = [event_id for event_id, _ in signed]
    if len(set(event_ids)) != len(event_ids):
        raise RuntimeError("two signed webhooks share an event id")
    return event_ids, [body for _, body in signed]


# ---- the load generator (its own process) ----------------------------------------------------


class Wire:
    """One keep-alive HTTP/1.1 connection, requests written and answers parsed by hand."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.head = f"POST {PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: text/plain\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0.0

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        self.used = time.monotonic()

    async def post(self, body: bytes) -> int:
        """POST one body; the answer's status (0: no answer)."""
        try:
            if self.writer is None or time.monotonic() - self.used > IDLE_RECONNECT:
                self.close()
                await self.connect()
            assert self.reader is not None and self.writer is not None
            self.writer.write(f"{self.head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            status = int(head[9:12])
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            await self.reader.readexactly(length)
            self.used = time.monotonic()
            if close:
                self.close()
            return status
        except (OSError, asyncio.IncompleteReadError, ValueError):  # TimeoutError is an OSError
            self.close()
            return 0

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def open_loop(bodies: list[bytes], port: int, rate: float, ready: Any) -> dict[str, Any]:
    """Send body i at start + i/rate on an idle connection; latency from when it was due."""
    idle = [Wire(port) for _ in range(16)]
    for wire in idle:
        await wire.connect()
    opened = len(idle)
    status = [0] * len(bodies)
    from_due = [0.0] * len(bodies)
    from_send = [0.0] * len(bodies)
    lateness = [0.0] * len(bodies)
    await ready()
    start = time.perf_counter()

    async def send(i: int, due: float, wire: Wire) -> None:
        sent = time.perf_counter()
        status[i] = await wire.post(bodies[i])
        done = time.perf_counter()
        from_due[i], from_send[i], lateness[i] = done - due, done - sent, sent - due
        idle.append(wire)

    tasks = set()
    for i in range(len(bodies)):
        due = start + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        while not idle and opened >= MAX_OPEN_LOOP_CONNECTIONS:
            await asyncio.sleep(0.0005)
        if not idle:
            idle.append(Wire(port))
            opened += 1
        task = asyncio.create_task(send(i, due, idle.pop()))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks)
    elapsed = time.perf_counter() - start
    for wire in idle:
        wire.close()
    return {
        "status": status,
        "from_due": from_due,
        "from_send": from_send,
        "lateness": lateness,
        "elapsed": elapsed,
        "connections": opened,
    }


async def closed_loop(
    bodies: list[bytes], port: int, connections: int, seconds: float, ready: Any
) -> dict[str, Any]:
    """`connections` connections each send the next body once the last is answered."""
    wires = [Wire(port) for _ in range(connections)]
    for wire in wires:
        await wire.connect()
    status = [-1] * len(bodies)  # -1: never sent
    latency: list[float] = []
    done_at: list[float] = []
    cursor = 0
    await ready()
    start = time.perf_counter()
    deadline = start + seconds

    async def drive(wire: Wire) -> None:
        nonlocal cursor
        while cursor < len(bodies) and time.perf_counter() < deadline:
            i, cursor = cursor, cursor + 1
            sent = time.perf_counter()
            status[i] = await wire.post(bodies[i])
            done = time.perf_counter()
            latency.append(done - sent)
            done_at.append(done - start)
        wire.close()

    await asyncio.gather(*(drive(wire) for wire in wires))
    return {
        "status": status,
        "latency": latency,
        "done_at": done_at,
        "elapsed": time.perf_counter() - start,
        "ran_out": cursor >= len(bodies),
    }


def generate(pipe: Connection, port: int, bodies_file: str) -> None:
    """The load generator's process: runs each phase it is sent, answers with its figures."""
    lines = Path(bodies_file).read_bytes().split(b"\n")
    while True:
        phase = pipe.recv()
        if phase is None:
            return
        bodies = lines[phase["first"] : phase["first"] + phase["count"]]

        async def ready() -> None:
            pipe.send("ready")
            pipe.recv()  # "go": the parent has read the daemon's CPU clock

        cpu = resource.getrusage(resource.RUSAGE_SELF)
        if phase["kind"] == "open":
            found = asyncio.run(open_loop(bodies, port, phase["rate"], ready))
        else:
            found = asyncio.run(
                closed_loop(bodies, port, phase["connections"], phase["seconds"], ready)
            )
        after = resource.getrusage(resource.RUSAGE_SELF)
        found["cpu"] = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
        pipe.send(found)


# ---- the daemon -----------------------------------------------------------------------------


class Daemon:
    """`syncd run` as a child process, its output in a log file."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.log = workdir / "syncd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def syncd(self, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "syncd", *args, "--config", str(config)],
            cwd=self.workdir,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def start(self, config: Path) -> None:
        import httpx

        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "syncd", "run", "--config", str(config)],
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
                if httpx.get(f"http://{HOST}:{self.port}/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"syncd run never became ready:\n{self.log.read_text()[-3000:]}")

    def metrics(self) -> dict[str, float]:
        import httpx

        try:
            text = httpx.get(f"http://{HOST}:{self.port}/metrics", timeout=10).text
        except httpx.HTTPError:
            return {}
        found = {}
        for line in text.splitlines():
            match = re.match(r"^(\w+(?:\{[^}]*\})?) (\S+)$", line)
            if match:
                found[match.group(1)] = float(match.group(2))
        return found

    def cpu_seconds(self) -> float:
        """User + system CPU the daemon (all its threads) has used so far (Linux /proc)."""
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


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def stored_event_ids(database: Path) -> set[str]:
    """Every Wix event id in the daemon's inbox, read straight from its SQLite file."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        rows = connection.execute("SELECT event_id FROM inbox_events WHERE source = 'wix'")
        return {row[0] for row in rows}


# ---- the run --------------------------------------------------------------------------------


class Generator:
    """The load generator process and the handshake that times each phase."""

    def __init__(self, port: int, bodies_file: Path, daemon: Daemon) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.daemon = daemon
        self.process = context.Process(
            target=generate, args=(child, port, str(bodies_file)), daemon=True
        )
        self.process.start()

    def run(self, **phase: Any) -> dict[str, Any]:
        """Run one phase; its figures plus the daemon's CPU seconds and the wall time."""
        self.pipe.send(phase)
        if self.pipe.recv() != "ready":
            raise RuntimeError("the load generator is confused")
        before = self.daemon.cpu_seconds(), time.perf_counter()
        self.pipe.send("go")
        found: dict[str, Any] = self.pipe.recv()
        found["daemon_cpu"] = self.daemon.cpu_seconds() - before[0]
        found["wall"] = time.perf_counter() - before[1]
        return found

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.pipe.send(None)
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()


@contextlib.contextmanager
def emulators(accounts: int) -> Iterator[tuple[Any, Any, Any, Any]]:
    """Both emulators, quiet, served on free ports, `accounts` customers on each side."""
    from connectors.square.emulator import SquareEmulator
    from syncd.sandbox.server import serve_in_thread
    from syncd.sandbox.wix import WixEmulator

    wix = WixEmulator(seed=1)
    wix.activate()
    square = SquareEmulator(seed=2, signature_key=SIGNATURE_KEY)
    for emulator in (wix, square):
        knobs = emulator.knobs
        knobs.requests_per_minute = 0  # syncd's own budget is what paces it
        knobs.faults.latency_ms = 0
        knobs.webhook_hold_ms = 0
    wix.seed_accounts([{"email": f"bench{i}@example.com", "balance": 100} for i in range(accounts)])
    square.seed_accounts(
        [
            {"email": f"bench{i}@example.com", "phone": f"+1415666{i:04d}", "balance": 100}
            for i in range(accounts)
        ]
    )
    for emulator in (wix, square):
        emulator.webhooks.reset()  # nobody listens: the emulators send nothing to syncd
    with serve_in_thread(wix.app) as wix_at, serve_in_thread(square.app) as square_at:
        yield wix, square, wix_at, square_at


def run(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    port = free_port()
    with (
        emulators(args.accounts) as (wix, square, wix_at, square_at),
        tempfile.TemporaryDirectory(prefix="syncd-bench-") as folder,
    ):
        workdir = Path(folder)
        configs = {}
        for name, rpm in (("backfill", 100_000), ("run", 200)):
            configs[name] = workdir / f"{name}.toml"
            configs[name].write_text(
                CONFIG.format(
                    wix_url=wix_at.url,
                    site_id=wix.credentials.site_id,
                    api_key=wix.credentials.api_key,
                    pem=key.public_key()
                    .public_bytes(
                        serialization.Encoding.PEM,
                        serialization.PublicFormat.SubjectPublicKeyInfo,
                    )
                    .decode()
                    .strip(),
                    wix_rpm=rpm,
                    port=port,
                    square_url=square_at.url,
                    square_token=square.access_token,
                    signature_key=SIGNATURE_KEY,
                )
            )
        daemon = Daemon(workdir, port)
        print(f"backfill: syncd --reconcile ({args.accounts} customers) ...", flush=True)
        backfill = daemon.syncd(configs["backfill"], "--reconcile")
        if backfill.returncode != 0 or f"linked        {args.accounts} " not in backfill.stdout:
            print(backfill.stdout + backfill.stderr, file=sys.stderr)
            print("FAIL: the backfill did not link every customer", file=sys.stderr)
            return 1
        wires = [wix.state.account_wire(a) for a in wix.state.accounts.values()]
        counts = {
            "warmup": WARMUP_WEBHOOKS,
            "open": int(args.rate * args.seconds),
            "max": int(args.max_budget * args.max_seconds),
        }
        total = sum(counts.values())
        print(f"signing {total} distinct Wix webhooks ...", flush=True)
        started = time.perf_counter()
        site = {
            "instance_id": wix.credentials.instance_id,
            "site_id": wix.credentials.site_id,
            "app_id": wix.credentials.app_id,
        }
        event_ids, bodies = presign(private_pem, site, wires, total)
        print(f"  signed in {time.perf_counter() - started:.1f} s", flush=True)
        bodies_file = workdir / "bodies.txt"
        bodies_file.write_bytes("\n".join(bodies).encode())
        first = {"warmup": 0, "open": counts["warmup"]}
        first["max"] = first["open"] + counts["open"]

        generator = None
        try:
            daemon.start(configs["run"])
            generator = Generator(port, bodies_file, daemon)
            print(f"warm-up: {counts['warmup']} webhooks at 200/s ...", flush=True)
            warmup = generator.run(kind="open", first=0, count=counts["warmup"], rate=200.0)
            print(f"open loop: {counts['open']} webhooks at {args.rate:g}/s ...", flush=True)
            opened = generator.run(
                kind="open", first=first["open"], count=counts["open"], rate=args.rate
            )
            print(
                f"closed loop: {args.connections} connections for {args.max_seconds:g} s ...",
                flush=True,
            )
            flood = generator.run(
                kind="max",
                first=first["max"],
                count=counts["max"],
                connections=args.connections,
                seconds=args.max_seconds,
            )
            metrics = daemon.metrics()
        finally:
            if generator is not None:
                generator.close()
            code = daemon.stop()
        stored = stored_event_ids(workdir / "syncd.db")
        log_text = daemon.log.read_text(errors="replace")

    phases = {"warmup": warmup, "open": opened, "max": flood}
    figures = tally(args, phases, first, event_ids, stored, metrics, code)
    report(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return verdict(figures, log_text)


def tally(
    args: argparse.Namespace,
    phases: dict[str, dict[str, Any]],
    first: dict[str, int],
    event_ids: list[str],
    stored: set[str],
    metrics: dict[str, float],
    code: int | None,
) -> dict[str, Any]:
    """The flat dict of every figure (what --json writes)."""
    acknowledged, refused, unanswered = [], 0, 0
    for name, phase in phases.items():
        for offset, status in enumerate(phase["status"]):
            if 200 <= status < 300:
                acknowledged.append(event_ids[first[name] + offset])
            elif status > 0:
                refused += 1
            elif status == 0:
                unanswered += 1
    lost = [event_id for event_id in acknowledged if event_id not in stored]
    opened, flood = phases["open"], phases["max"]
    ms = 1000.0
    ok = [s for s in flood["status"] if 200 <= s < 300]
    per_second = [0] * (int(flood["elapsed"]) + 1)
    for done in flood["done_at"]:
        per_second[int(done)] += 1
    full_seconds = per_second[: int(flood["elapsed"])] or per_second

    def metric(name: str) -> int:
        return int(metrics.get(f'{name}{{source="wix"}}', 0))

    return {
        "webhooks_per_second": round(len(ok) / flood["elapsed"], 1),
        "max_webhooks_per_s_slowest_second": min(full_seconds),
        "max_connections": args.connections,
        "max_seconds": round(flood["elapsed"], 2),
        "max_ran_out_of_bodies": flood["ran_out"],
        "max_ack_p50_ms": round(percentile(flood["latency"], 50) * ms, 2),
        "max_ack_p99_ms": round(percentile(flood["latency"], 99) * ms, 2),
        "max_daemon_cpu_share": round(flood["daemon_cpu"] / flood["wall"], 3),
        "max_daemon_cpu_ms_per_webhook": round(flood["daemon_cpu"] / max(len(ok), 1) * ms, 3),
        "max_generator_cpu_share": round(flood["cpu"] / flood["wall"], 3),
        "open_rate_per_s": args.rate,
        "open_sent": len(opened["status"]),
        "open_achieved_per_s": round(len(opened["status"]) / opened["elapsed"], 1),
        "ack_p50_ms": round(percentile(opened["from_due"], 50) * ms, 2),
        "ack_p99_ms": round(percentile(opened["from_due"], 99) * ms, 2),
        "ack_max_ms": round(max(opened["from_due"]) * ms, 2),
        "ack_from_send_p99_ms": round(percentile(opened["from_send"], 99) * ms, 2),
        "open_sender_late_p99_ms": round(percentile(opened["lateness"], 99) * ms, 2),
        "open_connections": opened["connections"],
        "open_daemon_cpu_share": round(opened["daemon_cpu"] / opened["wall"], 3),
        "open_daemon_cpu_ms_per_webhook": round(
            opened["daemon_cpu"] / len(opened["status"]) * ms, 3
        ),
        "open_generator_cpu_share": round(opened["cpu"] / opened["wall"], 3),
        "acknowledged": len(acknowledged),
        "refused": refused,
        "unanswered": unanswered,
        "lost": len(lost),
        "lost_examples": ",".join(lost[:5]),
        "stored": len(stored),
        "daemon_received": metric("syncd_webhooks_received_total"),
        "daemon_duplicates": metric("syncd_webhooks_duplicate_total"),
        "daemon_rejected": metric("syncd_webhooks_rejected_total"),
        "daemon_syncs": int(
            sum(v for k, v in metrics.items() if k.startswith("syncd_syncs_total"))
        ),
        "daemon_exit_code": code,
        "accounts": args.accounts,
        "nproc": os.cpu_count(),
        "loadavg_1min_after": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "commit": commit(),
    }


def report(figures: dict[str, Any]) -> None:
    f = figures
    rows = [
        (
            "sustained max (closed loop)",
            f"{f['webhooks_per_second']:.0f} webhooks/s acknowledged "
            f"(slowest whole second {f['max_webhooks_per_s_slowest_second']}) over "
            f"{f['max_seconds']:.1f} s with {f['max_connections']} connections"
            + (" [ran out of bodies: raise --max-budget]" if f["max_ran_out_of_bodies"] else ""),
        ),
        ("  ack p50 / p99", f"{f['max_ack_p50_ms']:.1f} / {f['max_ack_p99_ms']:.1f} ms"),
        (
            "  CPU daemon / generator",
            f"{f['max_daemon_cpu_share']:.0%} / {f['max_generator_cpu_share']:.0%} of one core "
            f"(daemon {f['max_daemon_cpu_ms_per_webhook']:.2f} ms CPU per webhook)",
        ),
        (
            f"open loop at {f['open_rate_per_s']:g}/s",
            f"{f['open_sent']} webhooks ({f['open_achieved_per_s']:.0f}/s sent), "
            f"{f['open_connections']} connections",
        ),
        (
            "  ack p50 / p99 / max",
            f"{f['ack_p50_ms']:.1f} / {f['ack_p99_ms']:.1f} / {f['ack_max_ms']:.1f} ms "
            f"(from due; p99 from send {f['ack_from_send_p99_ms']:.1f} ms; "
            f"sender late p99 {f['open_sender_late_p99_ms']:.1f} ms)",
        ),
        (
            "  CPU daemon / generator",
            f"{f['open_daemon_cpu_share']:.0%} / {f['open_generator_cpu_share']:.0%} of one core "
            f"(daemon {f['open_daemon_cpu_ms_per_webhook']:.2f} ms CPU per webhook)",
        ),
        (
            "events",
            f"acknowledged {f['acknowledged']}, refused {f['refused']}, unanswered "
            f"{f['unanswered']}, stored {f['stored']}, LOST {f['lost']}",
        ),
        (
            "daemon counters",
            f"received {f['daemon_received']}, duplicates {f['daemon_duplicates']}, "
            f"rejected {f['daemon_rejected']}, syncs {f['daemon_syncs']}",
        ),
        ("daemon exit code after SIGTERM", str(f["daemon_exit_code"])),
        ("linked accounts", str(f["accounts"])),
        ("syncd commit", f["commit"]),
        (
            "machine",
            f"{f['nproc']} CPUs, {f['platform']} (load average {f['loadavg_1min_after']} "
            "after the run: other work shares these cores)",
        ),
        ("python", f["python"]),
    ]
    print()
    for name, value in rows:
        print(f"{name:32} {value}")


def verdict(figures: dict[str, Any], log_text: str) -> int:
    """Exit 1 on a lost event (or a traceback while running); WARN on anything else odd."""
    running, _, stopping = log_text.partition('"daemon.stopping"')
    failures = []
    if figures["lost"]:
        failures.append(f"{figures['lost']} acknowledged event(s) not in the inbox")
    if "Traceback" in running:
        failures.append("the daemon logged a traceback while running")
    warnings = []
    if figures["refused"] or figures["unanswered"]:
        warnings.append(f"{figures['refused']} refused, {figures['unanswered']} unanswered")
    if "Traceback" in stopping or figures["daemon_exit_code"] != 0:
        warnings.append(f"daemon stop: exit {figures['daemon_exit_code']}")
    for warning in warnings:
        print(f"WARN: {warning}", file=sys.stderr)
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    if failures or warnings:
        print(f"daemon log (tail):\n{log_text[-3000:]}", file=sys.stderr)
    if failures:
        return 1
    print("\nOK: every acknowledged event is in the inbox (lost=0)")
    return 0


def commit() -> str:
    """HEAD's commit read from .git (without running git), or "?"."""
    git = Path(__file__).resolve().parent.parent / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:12]
        ref = head[5:]
        if (git / ref).exists():
            return (git / ref).read_text().strip()[:12]
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0][:12]
    except OSError:
        pass
    return "?"


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop rate (500/s)")
    parser.add_argument("--seconds", type=float, default=10.0, help="open-loop seconds (10)")
    parser.add_argument("--max-seconds", type=float, default=10.0, help="closed loop (10 s)")
    parser.add_argument(
        "--connections", type=int, default=32, help="closed-loop keep-alive connections (32)"
    )
    parser.add_argument(
        "--max-budget",
        type=int,
        default=2500,
        help="webhooks signed per closed-loop second (2500): its ceiling",
    )
    parser.add_argument("--accounts", type=int, default=500, help="linked customers (500)")
    parser.add_argument("--json", help="write the figures to this file as a flat JSON dict")
    args = parser.parse_args(argv)
    if min(args.rate, args.seconds, args.max_seconds, args.connections, args.accounts) <= 0:
        parser.error("every number must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse(argv))


if __name__ == "__main__":
    sys.exit(main())
