"""The benchmark's chart: one SVG, one panel of horizontal bars per question (no plotting
library needed)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

WIDTH, BAR, GAP, LABEL, PAD = 760, 18, 6, 250, 16
COLOURS = {"syncd": "#2f6fb0", "reference": "#b0b0b0", "limit": "#d08a2c"}


def draw(results: dict[str, Any], targets: Sequence[Any]) -> str:
    """Panels of bars from `benchmarks/run.py`'s results."""
    panels = [p for p in _panels(results) if p[1]]
    y, parts = PAD, []
    for title, bars, unit in panels:
        parts.append(f'<text x="{PAD}" y="{y + 12}" font-weight="bold">{escape(title)}</text>')
        y += 22
        top = max(value for _, value, _ in bars) or 1
        for label, value, kind in bars:
            length = (WIDTH - LABEL - 2 * PAD - 90) * value / top
            parts.append(f'<text x="{PAD}" y="{y + 13}">{escape(label)}</text>')
            parts.append(
                f'<rect x="{LABEL}" y="{y}" width="{length:.1f}" height="{BAR}"'
                f' fill="{COLOURS[kind]}"/>'
            )
            parts.append(
                f'<text x="{LABEL + length + 6:.1f}" y="{y + 13}">{_number(value)} {unit}</text>'
            )
            y += BAR + GAP
        y += 12
    scored = [t for t in targets if t.limit != "reference"]
    met = sum(1 for t in scored if t.met)
    parts.append(
        f'<text x="{PAD}" y="{y + 10}" fill="#555">{met} of {len(scored)} targets met'
        " (benchmarks/run.py)</text>"
    )
    height = y + 2 * PAD
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}"'
        f' viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">'
        f'<rect width="100%" height="100%" fill="white"/>{"".join(parts)}</svg>\n'
    )


def _panels(results: dict[str, Any]) -> list[tuple[str, list[tuple[str, float, str]], str]]:
    def run(key: str, index: int = 0) -> dict[str, Any]:
        runs = results.get(key, {}).get("runs") or []
        return dict(runs[index]) if index < len(runs) else {}

    calls, wall, memory, reference = [], [], [], []
    for key in ("bound", "scaled"):
        r = run(key)
        if r:
            size = f"{r['accounts']:,} at {r['rate_per_minute']:,}/min"
            calls.append((f"minimum, {size}", r["minimum_calls"], "limit"))
            calls.append((f"syncd, {size}", r["wix_calls"] + r["square_calls"], "syncd"))
            wall.append((f"calls ÷ R, {size}", r["bound_seconds"], "limit"))
            wall.append((f"syncd, {size}", r["wall_seconds"], "syncd"))
    for key in ("memory_small", "memory_large"):
        r = run(key)
        if r:
            memory.append((f"{r['accounts']:,} accounts a side", r["peak_rss_mb"], "syncd"))
    ours, obvious = run("reference"), run("reference", 1)
    if ours and obvious:
        size = f"{ours['accounts']:,} accounts, 20 ms"
        reference = [
            (f"syncd, {size}", ours["wall_seconds"], "syncd"),
            (f"one at a time, {size}", obvious["wall_seconds"], "reference"),
        ]
    unthrottled = run("unthrottled")
    cpu = (
        [(f"{unthrottled['accounts']:,} a side, 20 ms", unthrottled["cpu_seconds"], "syncd")]
        if unthrottled
        else []
    )
    intake = results.get("intake", {})
    webhooks = (
        [
            ("target", 1000, "limit"),
            ("syncd run, sustained", intake["webhooks_per_second"], "syncd"),
        ]
        if "webhooks_per_second" in intake
        else []
    )
    convergence = results.get("convergence", {})
    latency = (
        [
            ("target p99", 1000, "limit"),
            ("p50", convergence.get("latency_p50_ms", 0), "syncd"),
            ("p99", convergence["latency_p99_ms"], "syncd"),
        ]
        if "latency_p99_ms" in convergence
        else []
    )
    return [
        ("API calls of a backfill", calls, "calls"),
        ("Backfill wall time at the rate limit", wall, "s"),
        ("Backfill against the obvious way (wall time)", reference, "s"),
        ("syncd CPU of an unthrottled backfill", cpu, "CPU-s"),
        ("Peak RSS of syncd --reconcile", memory, "MB"),
        ("Verified Wix webhooks a second", webhooks, "/s"),
        ("Change to equal balances at 100 changes/s", latency, "ms"),
    ]


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"
