"""syncd as the operator runs it, under fire: `syncd --reconcile` and `syncd run` as their own
processes against one config file, a webhook relay in front of the replicas, SIGKILL.

The relay stands where a load balancer would: both emulators send their webhooks to it, and it
hands each one to the next replica in turn (round-robin), skipping a replica that refuses the
connection (killed, or not up yet); when none takes it the sender gets a 502 and retries, as
vendors do. The sender sees the answer of the replica that took the webhook, so "answered 2xx"
means a replica answered 2xx. Square signs the URL it posts to: every replica is configured
with the relay's URL as its `webhook_url`, as behind any proxy.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from tests.chaos.world import CLIENT_TIMEOUT_SECONDS, SIGNATURE_KEY, Shop

CONNECTOR = "shop"
POLL_SECONDS = 1
CONFIG = """
[database]
url = "{database}"
[wix]
base_url = "{wix_url}"
site_id = "{site_id}"
api_key = "{api_key}"
webhook_public_key_file = "{pem}"
requests_per_minute = 100000
timeout_seconds = {timeout}
[sync]
initial_policy = "external"
poll_interval_seconds = {poll}
drift_check_cron = ""
workers = 4
[server]
host = "127.0.0.1"
port = 8080
[[connectors]]
name = "{connector}"
type = "square"
base_url = "{square_url}"
access_token = "{square_token}"
webhook_signature_key = "{signature_key}"
webhook_url = "{hook}"
create_missing = "both"
requests_per_minute = 100000
timeout_seconds = {timeout}
"""
FORWARD_SECONDS = 2.5
BACKFILL_LIMIT_SECONDS = 300
_HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding"}


def write_config(
    folder: Path, shop: Shop, database: str, wix_url: str, square_url: str, relay_url: str
) -> Path:
    """The config every syncd process of a run shares (each replica's port comes from
    SYNCD_SERVER__PORT)."""
    pem = folder / "wix.pem"
    pem.write_text(shop.wix.public_key_pem)
    config = folder / "syncd.toml"
    config.write_text(
        CONFIG.format(
            database=database,
            wix_url=wix_url,
            site_id=shop.wix.credentials.site_id,
            api_key=shop.wix.credentials.api_key,
            pem=pem,
            timeout=CLIENT_TIMEOUT_SECONDS,
            poll=POLL_SECONDS,
            connector=CONNECTOR,
            square_url=square_url,
            square_token=shop.square.access_token,
            signature_key=SIGNATURE_KEY,
            hook=f"{relay_url}/webhooks/{CONNECTOR}",
        )
    )
    return config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def syncd_env(port: int | None = None) -> dict[str, str]:
    """The environment of a syncd process: nothing of the caller's SYNCD_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    if port is not None:
        env["SYNCD_SERVER__PORT"] = str(port)
    return env


class Relay:
    """Round-robin webhook relay in front of the replicas (see the module docstring)."""

    def __init__(self, targets: Callable[[], list[str]]) -> None:
        self.targets = targets  # base URLs of the replicas, in a fixed order
        self.turn = 0
        self.taken: Counter[str] = Counter()  # base URL → webhooks it answered
        self.refused = 0  # no replica took the connection: the sender got a 502
        self._client: httpx.AsyncClient | None = None

    def app(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            # A sender that gave up on its webhook (Wix waits 1.25 s) retries it: give up on
            # the forward soon after, so abandoned forwards do not pile up on slow replicas.
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=32)
            async with httpx.AsyncClient(timeout=FORWARD_SECONDS, limits=limits) as client:
                self._client = client
                yield

        return Starlette(
            routes=[Route("/webhooks/{name}", self.forward, methods=["POST"])],
            lifespan=lifespan,
        )

    async def forward(self, request: Request) -> Response:
        assert self._client is not None
        try:
            body = await request.body()
        except ClientDisconnect:
            return Response(b"the sender went away", status_code=400)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        targets = self.targets()
        self.turn += 1
        for i in range(len(targets)):
            target = targets[(self.turn + i) % len(targets)]
            try:
                answer = await self._client.post(
                    f"{target}{request.url.path}", content=body, headers=headers
                )
            except httpx.ConnectError:
                continue  # not listening: the next replica
            except httpx.HTTPError:
                return Response(b"replica went away", status_code=502)
            self.taken[target] += 1
            return Response(
                answer.content,
                status_code=answer.status_code,
                media_type=answer.headers.get("content-type"),
            )
        self.refused += 1
        return Response(b"no replica listening", status_code=502)


@dataclass
class Replica:
    """One `syncd run` process slot: its port, its log, the process of the moment."""

    number: int
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    pids: list[int] = field(default_factory=list)
    retired: bool = False  # killed for good: not restarted

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def up(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Fleet:
    """The `syncd run` replicas of one run: start, SIGKILL, restart, notice crashes."""

    def __init__(self, config: Path, folder: Path, count: int) -> None:
        self.config = config
        self.replicas = [Replica(n, free_port(), folder / f"replica-{n}.log") for n in range(count)]
        self.kills = 0
        self.crashes: list[str] = []

    def urls(self) -> list[str]:
        return [r.url for r in self.replicas]

    def start(self, replica: Replica) -> None:
        with replica.log.open("ab") as log:
            replica.process = subprocess.Popen(
                [sys.executable, "-m", "syncd", "run", "--config", str(self.config)],
                env=syncd_env(replica.port),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        replica.pids.append(replica.process.pid)

    def kill(self, replica: Replica) -> None:
        """SIGKILL: no shutdown, no cleanup, leases and SENT writes left behind."""
        assert replica.process is not None
        replica.process.send_signal(signal.SIGKILL)
        replica.process.wait(timeout=10)
        self.kills += 1

    def crashed(self) -> list[Replica]:
        """Replicas that exited by themselves (not killed); each noted with its exit code."""
        found = []
        for replica in self.replicas:
            process = replica.process
            if replica.retired or process is None or process.poll() is None:
                continue
            if process.returncode == -signal.SIGKILL:
                continue
            self.crashes.append(
                f"replica {replica.number} (pid {process.pid}) exited with {process.returncode}"
                f": {last_line(replica.log)}"
            )
            replica.process = None
            found.append(replica)
        return found

    def ready(self, replica: Replica) -> bool:
        try:
            return httpx.get(f"{replica.url}/readyz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        """SIGTERM every running replica (SIGKILL when one lingers)."""
        running = [r.process for r in self.replicas if r.up and r.process is not None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout=12)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def owner_of(self, replica: Replica) -> str:
        """The lease owner name of the replica's current process (`host:pid`)."""
        assert replica.process is not None
        return f"{socket.gethostname()}:{replica.process.pid}"

    def owners(self) -> dict[str, int]:
        """Lease owner (`host:pid`) → replica number, for every process ever started."""
        host = socket.gethostname()
        return {f"{host}:{pid}": r.number for r in self.replicas for pid in r.pids}


def last_line(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return lines[-1][:300] if lines else "(empty log)"


@dataclass
class Backfill:
    """How the backfill went: attempts, the ones killed on purpose, the ones that failed."""

    attempts: int = 0
    killed: int = 0
    failures: list[str] = field(default_factory=list)
    output: str = ""


def backfill(config: Path, log: Path, *, kill_after: float | None, attempts: int = 8) -> Backfill:
    """`syncd --reconcile` until it exits 0: the first run SIGKILLed after `kill_after`
    seconds when given; a run that fails (faults) is run again, and counted."""
    outcome = Backfill()
    command = [sys.executable, "-m", "syncd", "--reconcile", "--config", str(config)]
    while outcome.attempts < attempts:
        outcome.attempts += 1
        planned_kill = kill_after is not None
        with log.open("ab") as sink:
            process = subprocess.Popen(
                command, env=syncd_env(), stdout=subprocess.PIPE, stderr=sink
            )
            try:
                out, _ = process.communicate(timeout=kill_after or BACKFILL_LIMIT_SECONDS)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.communicate(timeout=10)
                kill_after = None
                if planned_kill:
                    outcome.killed += 1
                else:
                    outcome.failures.append(f"still running after {BACKFILL_LIMIT_SECONDS} s")
                continue
            kill_after = None
        outcome.output = out.decode(errors="replace")
        if process.returncode == 0:
            return outcome
        outcome.failures.append(
            f"exit {process.returncode}: {_report_line(outcome.output, 'errors')}"
            f" / {last_line(log)}"
        )
        time.sleep(0.5)
    return outcome


def _report_line(report: str, name: str) -> str:
    for line in report.splitlines():
        if line.strip().startswith(name):
            return " ".join(line.split())
    return "(no report)"
