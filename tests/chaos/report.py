"""What a chaos run prints: one row per seed, the lines that explain it, and the totals."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from tests.chaos.checks import listing

if TYPE_CHECKING:
    from tests.chaos.harness import SeedResult

HEADER = (
    f"{'seed':>6} {'replicas':>8} {'customers':>9} {'ops':>5} {'faults':>7} {'kills':>5} "
    f"{'backfill':>8} {'conflicts':>9} {'violations':>10} {'seconds':>7}"
)


def row(r: SeedResult) -> str:
    backfill_runs = f"{r.backfill_runs}" + (f"/{r.backfill_kills}k" if r.backfill_kills else "")
    return (
        f"{r.seed:>6} {r.replicas:>8} {r.customers:>9} {r.ops:>5} {sum(r.faults.values()):>7} "
        f"{r.kills:>5} {backfill_runs:>8} {r.conflicts:>9} {len(r.violations):>10} "
        f"{r.seconds:>7.1f}"
    )


def details(r: SeedResult) -> list[str]:
    """The lines under a seed's row: each violation, crashes, notes."""
    lines = [f"    violation: {v}" for v in listing(r.violations, 20)]
    lines += [f"    crash: {c}" for c in listing(r.crashes, 5)]
    lines += [f"    backfill retry: {f}" for f in listing(r.backfill_failures, 3)]
    lines += [f"    note: {n}" for n in r.notes]
    lines.append(
        f"    phases: backfill {r.phases[0]:.1f} s, chaos {r.phases[1]:.1f} s, "
        f"settle {r.settle_seconds:.1f} s"
    )
    return lines


def totals(results: list[SeedResult], seconds: float) -> list[str]:
    faults: Counter[str] = Counter()
    played: Counter[str] = Counter()
    for r in results:
        faults.update(r.faults)
        played.update(r.played)
    violations = sum(len(r.violations) for r in results)
    bad = [r.seed for r in results if r.violations]
    return [
        f"total: {len(results)} seeds, {sum(r.ops for r in results):,} operations played, "
        f"{sum(faults.values()):,} faults injected, {sum(r.kills for r in results)} daemon "
        f"kills (+{sum(r.backfill_kills for r in results)} backfill kills, "
        f"{sum(r.backfill_runs - 1 - r.backfill_kills for r in results)} backfill re-runs), "
        f"{sum(r.conflicts for r in results)} conflicts open, {violations} violations; "
        f"{seconds:.0f} s",
        "  operations: " + ", ".join(f"{k} {v}" for k, v in played.most_common()),
        "  faults:     " + ", ".join(f"{k} {v}" for k, v in faults.most_common()),
        f"  crashes (exits not caused by a kill): {sum(len(r.crashes) for r in results)}",
        "  seeds with violations: " + (", ".join(map(str, bad)) if bad else "none"),
    ]
