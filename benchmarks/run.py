"""Every performance figure syncd promises, in one command; a table and a chart at the end.

    .venv/bin/python benchmarks/run.py            # a few minutes: small sizes
    .venv/bin/python benchmarks/run.py --full     # the sizes the targets name (about an hour)

Each scenario runs as its own process (`backfill.py`, `intake.py`, `latency.py`), so no
measurement shares an interpreter with another. The figures are written to
`benchmarks/results/<size>.json` and drawn in `benchmarks/results/<size>.svg`; a scenario
that fails is reported and the command exits 1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


@dataclass(frozen=True)
class Size:
    bound_accounts: int  # backfill at R = 200/min
    scaled_accounts: int  # backfill at the scaled-up rate
    scaled_rate: int
    unthrottled_accounts: int  # no limit, 20 ms latency
    memory_accounts: tuple[int, int]  # peak RSS at these two sizes
    reference_accounts: int  # syncd and the obvious way, side by side
    intake_seconds: int
    convergence_changes: int


QUICK = Size(1_000, 10_000, 2_000, 10_000, (10_000, 40_000), 1_000, 10, 1_000)
FULL = Size(2_000, 100_000, 20_000, 100_000, (100_000, 400_000), 2_000, 30, 6_000)


@dataclass(frozen=True)
class Target:
    name: str
    figure: str
    limit: str
    met: bool


def backfill(name: str, accounts: int, rate: int, latency_ms: int, *extra: str) -> dict[str, Any]:
    runs = _script(
        "backfill.py",
        "--name",
        name,
        "--accounts",
        str(accounts),
        "--rate",
        str(rate),
        "--latency-ms",
        str(latency_ms),
        *extra,
    )
    return runs


def _script(script: str, *args: str) -> dict[str, Any]:
    """Run one benchmark script with `--json`; its figures, or {"failed": exit code}."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "figures.json"
        print(f"\n$ python benchmarks/{script} {' '.join(args)}", flush=True)
        started = time.monotonic()
        code = subprocess.run(
            [sys.executable, str(HERE / script), *args, "--json", str(out)], check=False
        ).returncode
        figures: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
        figures["exit"] = code
        figures["seconds"] = round(time.monotonic() - started, 1)
        return figures


GROUPS = ("backfill", "intake", "convergence")


def run_all(size: Size, groups: Sequence[str], results: dict[str, Any]) -> dict[str, Any]:
    """Run the chosen groups of scenarios; the others keep their figures from `results`."""
    if "backfill" in groups:
        run_backfills(size, results)
    if "intake" in groups:
        seconds = str(size.intake_seconds)
        results["intake"] = _script("intake.py", "--seconds", seconds, "--max-seconds", seconds)
    if "convergence" in groups:
        results["convergence"] = _script(
            "latency.py", "--rate", "100", "--changes", str(size.convergence_changes)
        )
    return results


def run_backfills(size: Size, results: dict[str, Any]) -> None:
    results["bound"] = backfill("bound", size.bound_accounts, 200, 0)
    results["scaled"] = backfill("scaled", size.scaled_accounts, size.scaled_rate, 0)
    results["unthrottled"] = backfill("unthrottled", size.unthrottled_accounts, 0, 20)
    results["reference"] = backfill("reference", size.reference_accounts, 0, 20, "--reference")
    small, large = size.memory_accounts
    if large == size.unthrottled_accounts:
        results["memory_large"] = results["unthrottled"]
    else:
        results["memory_large"] = backfill("memory", large, 0, 0)
    if small == size.unthrottled_accounts:
        results["memory_small"] = results["unthrottled"]
    else:
        results["memory_small"] = backfill("memory", small, 0, 0)


def first_run(result: dict[str, Any], index: int = 0) -> dict[str, Any]:
    runs = result.get("runs") or [{}]
    return dict(runs[index]) if index < len(runs) else {}


def targets(results: dict[str, Any]) -> list[Target]:
    """Each target of the issue, with the figure that decides it."""
    found: list[Target] = []
    for key in ("bound", "scaled"):
        run = first_run(results.get(key, {}))
        if run:
            over = run["calls_over_minimum"]
            found.append(
                Target(
                    f"calls ({run['accounts']:,} accounts)",
                    f"{run['wix_calls'] + run['square_calls']:,} for a minimum of "
                    f"{run['minimum_calls']:,} ({over:+.2%})",
                    "≤ minimum + 1%",
                    over <= 0.01,
                )
            )
            found.append(
                Target(
                    f"backfill at {run['rate_per_minute']:,}/min ({run['accounts']:,})",
                    f"wall {run['wall_seconds']:.1f} s = {run['wall_over_bound']:.3f} x "
                    f"calls ÷ R; {run['received_429']} 429s",
                    "≤ 1.05 x, 0 429s",
                    run["wall_over_bound"] <= 1.05 and run["received_429"] == 0,
                )
            )
    run = first_run(results.get("unthrottled", {}))
    if run:
        found.append(
            Target(
                f"unthrottled, 20 ms ({run['accounts']:,} a side)",
                f"{run['cpu_seconds']:.1f} CPU-s, {run['accounts_per_second']:,.0f} accounts/s",
                "< 30 CPU-s at 100,000",
                run["cpu_seconds"] * 100_000 / run["accounts"] < 30,
            )
        )
    small, large = (
        first_run(results.get("memory_small", {})),
        first_run(results.get("memory_large", {})),
    )
    if small and large:
        growth = large["peak_rss_mb"] / small["peak_rss_mb"] - 1
        found.append(
            Target(
                "peak RSS",
                f"{small['peak_rss_mb']:.0f} MB at {small['accounts']:,}, "
                f"{large['peak_rss_mb']:.0f} MB at {large['accounts']:,} ({growth:+.0%})",
                "< 250 MB, < 20% growth x4",
                small["peak_rss_mb"] < 250 and growth < 0.20,
            )
        )
    intake = results.get("intake", {})
    if "webhooks_per_second" in intake:
        found.append(
            Target(
                "intake",
                f"{intake['webhooks_per_second']:,.0f}/s sustained; ack p99 "
                f"{intake.get('ack_p99_ms', float('nan')):.1f} ms at 500/s; "
                f"{intake.get('lost', '?')} lost",
                "≥ 1,000/s, p99 < 50 ms, 0 lost",
                intake["webhooks_per_second"] >= 1000
                and intake.get("ack_p99_ms", 1e9) < 50
                and intake.get("lost", 1) == 0,
            )
        )
    convergence = results.get("convergence", {})
    if "latency_p99_ms" in convergence:
        found.append(
            Target(
                "convergence at 100 changes/s",
                f"p50 {convergence.get('latency_p50_ms', float('nan')):.0f} ms, "
                f"p99 {convergence['latency_p99_ms']:.0f} ms",
                "p99 < 1 s",
                convergence["latency_p99_ms"] < 1000,
            )
        )
    ours, obvious = (
        first_run(results.get("reference", {})),
        first_run(results.get("reference", {}), 1),
    )
    if ours and obvious:
        found.append(
            Target(
                f"the obvious way ({ours['accounts']:,}, 20 ms)",
                f"syncd {ours['wall_seconds']:.1f} s / {ours['wix_calls'] + ours['square_calls']:,}"
                f" calls; obvious {obvious['wall_seconds']:.1f} s / "
                f"{obvious['wix_calls'] + obvious['square_calls']:,} calls "
                f"({obvious['wall_seconds'] / ours['wall_seconds']:.0f}x slower)",
                "reference",
                True,
            )
        )
    return found


def render(found: Sequence[Target]) -> str:
    width = max(len(t.name) for t in found)
    lines = [f"{'target':<{width}}  {'met':<4} figure (limit)"]
    for t in found:
        lines.append(f"{t.name:<{width}}  {'yes' if t.met else 'NO':<4} {t.figure} ({t.limit})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the sizes the targets name")
    parser.add_argument(
        "--only",
        choices=GROUPS,
        action="append",
        help="run only this group (repeatable); the others keep their last figures",
    )
    args = parser.parse_args(argv)
    size = FULL if args.full else QUICK
    label = "full" if args.full else "quick"
    saved = RESULTS / f"{label}.json"
    earlier = json.loads(saved.read_text())["results"] if args.only and saved.exists() else {}
    results = run_all(size, args.only or GROUPS, earlier)
    found = targets(results)
    print("\n" + render(found))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{label}.json").write_text(
        json.dumps({"targets": [t.__dict__ for t in found], "results": results}, indent=1)
    )
    from chart import draw  # beside this script

    (RESULTS / f"{label}.svg").write_text(draw(results, found))
    print(f"\nfigures: {RESULTS / (label + '.json')}\nchart:   {RESULTS / (label + '.svg')}")
    failed = [name for name, r in results.items() if r.get("exit")]
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
