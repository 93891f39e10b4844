"""How `syncd --reconcile` spends the API and the machine, against the emulators on localhost.

One run of this script is one scenario:

- the **emulators** (Wix and Square) run in a child process of their own, seeded with
  `--accounts` customers on each side (same email and phone), `--diverged` of them with a
  Square balance that differs from the Wix one; Wix enforces `--rate` requests a minute (0: no
  limit) and both answer after `--latency-ms`;
- **`syncd --reconcile`** runs as a second child process on a fresh SQLite store, with the same
  rate in its config (`wix.requests_per_minute`); the script takes its CPU time and peak RSS
  from the kernel (`wait4`), its wall time, and every request each emulator counted;
- the **minimum** is what the APIs make necessary: the Wix accounts in pages of 100, the Wix
  contacts in pages of 1,000 (matching by phone needs them: accounts carry no phone), the
  Square accounts in pages of 200 and their customers in batches of 100 (accounts carry no
  email), one write per diverged account, and one call to check the program is ACTIVE;
- afterwards every balance is read from both emulators: each pair must be equal, and equal to
  the Square balance it was seeded with (the default initial policy takes the till's side).

`--reference` also times the same backfill written the obvious way, one account at a time
(read the Square side of each Wix account, compare, adjust), on a fresh copy of the same
emulators, so that the two can be compared in one run.

Prints its figures; `--json PATH` writes them for `benchmarks/run.py`. Exits 1 when a balance is
wrong, the reconcile fails or a 429 was received.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIGNATURE_KEY = "bench-signature-key"
WIX_PAGE, CONTACTS_PAGE, SQUARE_PAGE, CUSTOMERS_BATCH = 100, 1000, 200, 100
SETUP_CALLS = 1  # the program's status (it must be ACTIVE)
PROFILE: list[str] = []  # `--profile PATH`: run the reconcile under cProfile

CONFIG = """
[database]
url = "sqlite:///syncd.db"
[wix]
base_url = "{wix_url}"
site_id = "{site_id}"
api_key = "{api_key}"
requests_per_minute = {wix_rate}
timeout_seconds = 30.0
[sync]
drift_check_cron = ""
[[connectors]]
name = "shop"
type = "square"
base_url = "{square_url}"
access_token = "{square_token}"
webhook_signature_key = "{signature_key}"
requests_per_minute = 100000
timeout_seconds = 30.0
"""


@dataclass
class Scenario:
    accounts: int
    diverged: float
    rate: int  # Wix requests a minute; 0: no limit
    latency_ms: int
    seed: int = 1


@dataclass
class Figures:
    scenario: str
    accounts: int
    diverged: int
    rate_per_minute: int
    latency_ms: int
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    wix_calls: int = 0
    square_calls: int = 0
    minimum_calls: int = 0
    calls_over_minimum: float = 0.0
    bound_seconds: float = 0.0  # Wix calls ÷ rate
    wall_over_bound: float = 0.0
    received_429: int = 0
    accounts_per_second: float = 0.0
    balances_ok: bool = False
    wrong_balances: int = 0
    requests: dict[str, int] = field(default_factory=dict)


# ---- the emulators, in a process of their own ---------------------------------------------------


def customers(scenario: Scenario) -> Iterator[tuple[dict[str, Any], dict[str, Any], bool]]:
    """(Wix spec, Square spec, diverged) for each customer; the same for the same seed."""
    rng = random.Random(scenario.seed)
    for i in range(scenario.accounts):
        number = 2_000_000 + i
        email = f"customer{i + 1}@example.com"
        name = f"Customer {i + 1}"
        balance = rng.randrange(0, 2000)
        diverged = rng.random() < scenario.diverged
        square_balance = (
            balance + rng.choice((-1, 1)) * rng.randrange(1, 200) if diverged else balance
        )
        wix = {
            "email": email,
            "name": name,
            "phone": f"(415) {number // 10000:03d}-{number % 10000:04d}",
            "countryCode": "US",
            "balance": balance,
        }
        square = {
            "email": email,
            "name": name,
            "phone": f"+1415{number:07d}",
            "balance": max(square_balance, 0),
        }
        yield wix, square, diverged and max(square_balance, 0) != balance


def serve_emulators(scenario: Scenario, ports: tuple[int, int], ready: Any) -> None:
    """The child process: seed both emulators, report their credentials, serve until killed."""
    from connectors.square.emulator import SquareEmulator
    from syncd.sandbox.server import serve
    from syncd.sandbox.wix import WixEmulator

    wix, square = WixEmulator(seed=scenario.seed), SquareEmulator(seed=scenario.seed)
    for emulator in (wix, square):
        knobs = emulator.knobs
        knobs.requests_per_minute = 0
        knobs.faults.latency_ms = scenario.latency_ms
        knobs.delivery.drop_rate = 0.0
        knobs.delivery.duplicate_rate = 0.0
    wix.knobs.requests_per_minute = scenario.rate
    specs = list(customers(scenario))
    wix.seed_accounts(w for w, _, _ in specs)
    square.seed_accounts(s for _, s, _ in specs)
    wix.activate()
    del specs
    ready.send(
        {
            "site_id": wix.credentials.site_id,
            "api_key": wix.credentials.api_key,
            "square_token": square.access_token,
        }
    )
    serve({ports[0]: wix.app, ports[1]: square.app})


@contextmanager
def emulators(scenario: Scenario) -> Iterator[dict[str, Any]]:
    ports = (free_port(), free_port())
    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe()
    process = context.Process(target=serve_emulators, args=(scenario, ports, child), daemon=True)
    process.start()
    try:
        if not parent.poll(600):
            raise RuntimeError("the emulators did not start within 10 minutes")
        info = parent.recv()
        info["wix_url"], info["square_url"] = (f"http://127.0.0.1:{p}" for p in ports)
        for url in (info["wix_url"], info["square_url"]):
            wait_until_serving(url)
        yield info
    finally:
        process.kill()
        process.join()


def wait_until_serving(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/_sandbox/stats", timeout=5)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def stats(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/_sandbox/stats", timeout=60).json())


# ---- measuring one reconcile ----------------------------------------------------------------


def minimum_calls(scenario: Scenario, diverged: int, *, phones: bool = True) -> int:
    n = scenario.accounts
    pages = max(1, math.ceil(n / WIX_PAGE))
    contacts = max(1, math.ceil(n / CONTACTS_PAGE)) if phones else 0
    square = max(1, math.ceil(n / SQUARE_PAGE)) + math.ceil(n / CUSTOMERS_BATCH)
    return pages + contacts + square + diverged + SETUP_CALLS


def run_reconcile(
    info: dict[str, Any], rate: int, workdir: Path
) -> tuple[subprocess.CompletedProcess[str], float, float, float]:
    """`syncd --reconcile` as a child: (result, wall s, CPU s, peak RSS MB of that child)."""
    config = write_config(info, rate, workdir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    out, err = workdir / "stdout", workdir / "stderr"
    started = time.monotonic()
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, *PROFILE, "-m", "syncd", "--config", str(config), "--reconcile"],
            cwd=workdir,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    process.returncode = code = os.waitstatus_to_exitcode(status)
    result = subprocess.CompletedProcess(process.args, code, out.read_text(), err.read_text())
    return result, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def write_config(info: dict[str, Any], rate: int, workdir: Path) -> Path:
    config = workdir / "syncd.toml"
    config.write_text(
        CONFIG.format(
            wix_url=info["wix_url"],
            site_id=info["site_id"],
            api_key=info["api_key"],
            wix_rate=rate or 100_000,
            square_url=info["square_url"],
            square_token=info["square_token"],
            signature_key=SIGNATURE_KEY,
        )
    )
    return config


def requests_of(counted: dict[str, Any]) -> int:
    return sum(int(n) for n in counted.get("requests", {}).values())


def measure(name: str, scenario: Scenario) -> Figures:
    expected = {w["email"]: s["balance"] for w, s, _ in customers(scenario)}
    diverged = sum(d for _, _, d in customers(scenario))
    figures = Figures(name, scenario.accounts, diverged, scenario.rate, scenario.latency_ms)
    with emulators(scenario) as info, scratch() as workdir:
        before = requests_of(stats(info["wix_url"])), requests_of(stats(info["square_url"]))
        result, wall, cpu, rss = run_reconcile(info, scenario.rate, workdir)
        if result.returncode != 0:
            print(result.stdout, result.stderr, sep="\n", file=sys.stderr)
            raise SystemExit(f"FAIL: syncd --reconcile exited {result.returncode}")
        wix_stats, square_stats = stats(info["wix_url"]), stats(info["square_url"])
        figures.wall_seconds, figures.cpu_seconds, figures.peak_rss_mb = wall, cpu, rss
        figures.wix_calls = requests_of(wix_stats) - before[0]
        figures.square_calls = requests_of(square_stats) - before[1]
        figures.received_429 = int(wix_stats.get("rate_limited", 0)) + int(
            square_stats.get("rateLimited", square_stats.get("rate_limited", 0))
        )
        figures.requests = {f"wix {k}": int(v) for k, v in wix_stats["requests"].items()} | {
            f"square {k}": int(v) for k, v in square_stats["requests"].items()
        }
        figures.wrong_balances = check_balances(info, expected)
    figures.balances_ok = figures.wrong_balances == 0
    figures.minimum_calls = minimum_calls(scenario, diverged)
    calls = figures.wix_calls + figures.square_calls
    figures.calls_over_minimum = calls / figures.minimum_calls - 1
    if scenario.rate:
        figures.bound_seconds = figures.wix_calls / (scenario.rate / 60)
        figures.wall_over_bound = wall / figures.bound_seconds
    figures.accounts_per_second = scenario.accounts / wall
    return figures


def check_balances(info: dict[str, Any], expected: dict[str, int]) -> int:
    """How many customers do not have the expected balance on both sides (read from the
    emulators' own state)."""
    wix = httpx.get(f"{info['wix_url']}/_sandbox/accounts", timeout=600).json()["accounts"]
    on_wix = {a["contact"]["email"]: a["points"]["balance"] for a in wix}
    square = info["square_url"]
    accounts = httpx.get(f"{square}/_sandbox/accounts", timeout=600).json()["loyalty_accounts"]
    people = httpx.get(f"{square}/_sandbox/customers", timeout=600).json()["customers"]
    email_of = {c["id"]: c.get("email_address") for c in people}
    on_square = {email_of.get(a.get("customer_id")): a["balance"] for a in accounts}
    return sum(
        1
        for email, want in expected.items()
        if not on_wix.get(email) == on_square.get(email) == want
    )


# ---- the obvious way ------------------------------------------------------------------------


async def obvious_backfill(info: dict[str, Any], rate: int) -> tuple[int, int]:
    """One account at a time: page Wix, find each account's Square match by email, compare,
    adjust Wix to the till's balance. Returns (Wix calls, Square calls)."""
    from connectors import create, typed_settings
    from syncd.settings import load_settings
    from syncd.wix.client import WixClient

    with scratch() as workdir:
        config = write_config(info, rate, workdir)
        settings = load_settings(config)
    async with WixClient(settings.wix) as wix, create(typed_settings(settings)[0]) as square:
        async for page in wix.iter_accounts():
            for account in page.items:
                found = await square.find_accounts("email", account.email or "")
                if len(found) == 1 and found[0].balance != account.balance:
                    await wix.adjust_points(
                        account.id,
                        amount=found[0].balance - account.balance,
                        revision=account.revision,
                        description="obvious backfill",
                    )
        return wix.calls, square.calls


def measure_obvious(name: str, scenario: Scenario) -> Figures:
    expected = {w["email"]: s["balance"] for w, s, _ in customers(scenario)}
    diverged = sum(d for _, _, d in customers(scenario))
    figures = Figures(name, scenario.accounts, diverged, scenario.rate, scenario.latency_ms)
    with emulators(scenario) as info:
        started, cpu = time.monotonic(), time.process_time()
        wix_calls, square_calls = asyncio.run(obvious_backfill(info, scenario.rate))
        figures.wall_seconds = time.monotonic() - started
        figures.cpu_seconds = time.process_time() - cpu
        figures.wix_calls, figures.square_calls = wix_calls, square_calls
        figures.wrong_balances = check_balances(info, expected)
    figures.balances_ok = figures.wrong_balances == 0
    figures.minimum_calls = minimum_calls(scenario, diverged)
    figures.calls_over_minimum = (wix_calls + square_calls) / figures.minimum_calls - 1
    if scenario.rate:
        figures.bound_seconds = wix_calls / (scenario.rate / 60)
        figures.wall_over_bound = figures.wall_seconds / figures.bound_seconds
    figures.accounts_per_second = scenario.accounts / figures.wall_seconds
    return figures


# ---- plumbing ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="syncd-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def machine() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "commit": commit or "unknown",
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def render(figures: Figures) -> str:
    lines = [
        f"{figures.scenario}: {figures.accounts:,} accounts a side, {figures.diverged:,} diverged"
    ]
    rate = f"{figures.rate_per_minute:,}/min" if figures.rate_per_minute else "no limit"
    lines.append(f"  Wix rate      {rate}; latency {figures.latency_ms} ms")
    lines.append(
        f"  calls         wix {figures.wix_calls:,} + square {figures.square_calls:,}"
        f" = {figures.wix_calls + figures.square_calls:,}; minimum {figures.minimum_calls:,}"
        f" ({figures.calls_over_minimum:+.2%})"
    )
    lines.append(
        f"  wall          {figures.wall_seconds:.1f} s"
        f" ({figures.accounts_per_second:,.0f} accounts/s)"
    )
    if figures.bound_seconds:
        lines.append(
            f"  bound         {figures.bound_seconds:.1f} s (wix calls / rate);"
            f" wall / bound {figures.wall_over_bound:.3f}"
        )
    lines.append(
        f"  CPU           {figures.cpu_seconds:.1f} s; peak RSS {figures.peak_rss_mb:.0f} MB"
    )
    lines.append(f"  429s          {figures.received_429}")
    verdict = "all equal" if figures.balances_ok else f"{figures.wrong_balances} WRONG"
    lines.append(f"  balances      {verdict}")
    return "\n".join(lines)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--diverged", type=float, default=0.10)
    parser.add_argument("--rate", type=int, default=200, help="Wix requests a minute (0: no limit)")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--name", default="backfill")
    parser.add_argument("--reference", action="store_true", help="also time the obvious way")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the reconcile here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.profile:
        PROFILE[:] = ["-m", "cProfile", "-o", str(args.profile.resolve())]
    scenario = Scenario(args.accounts, args.diverged, args.rate, args.latency_ms, args.seed)
    results = [measure(args.name, scenario)]
    print(render(results[0]), flush=True)
    for name, count in sorted(results[0].requests.items()):
        print(f"    {count:>8,}  {name}")
    if args.reference:
        results.append(measure_obvious(f"{args.name} (obvious way)", scenario))
        print(render(results[1]), flush=True)
    facts = machine()
    print(
        f"  machine       {facts['cpus']} cpus, {facts['platform']},"
        f" Python {facts['python']}, commit {facts['commit']}"
    )
    if args.json:
        args.json.write_text(
            json.dumps({"machine": facts, "runs": [asdict(r) for r in results]}, indent=1)
        )
    bad = [r for r in results if not r.balances_ok or r.received_429]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
