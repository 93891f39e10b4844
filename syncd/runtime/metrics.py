"""Counters and gauges in the Prometheus text format (no client library needed for this)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

Labels = tuple[tuple[str, str], ...]

HELP = {
    "syncd_webhooks_received_total": ("counter", "Webhooks verified and stored"),
    "syncd_webhooks_rejected_total": ("counter", "Webhooks refused (signature, size, shape)"),
    "syncd_webhooks_duplicate_total": ("counter", "Webhooks already stored (redeliveries)"),
    "syncd_syncs_total": ("counter", "Link syncs by result"),
    "syncd_writes_total": ("counter", "Writes applied, by side"),
    "syncd_conflicts_open": ("gauge", "Conflicts waiting for an operator"),
    "syncd_dirty_links": ("gauge", "Links waiting for a sync"),
    "syncd_oldest_unsynced_seconds": ("gauge", "Age of the oldest change not yet synced"),
    "syncd_api_calls_total": ("counter", "Requests sent to each remote API"),
    "syncd_api_rate_limited_total": ("counter", "429 answers from each remote API"),
    "syncd_polled_changes_total": ("counter", "Changes found by polling, by source"),
    "syncd_drift_repairs_total": ("counter", "Links the drift check found apart and re-synced"),
}


class Metrics:
    """A small registry: `inc` counters as things happen; gauges are read at scrape time."""

    def __init__(self) -> None:
        self._values: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._gauges: list[Callable[[], Iterable[tuple[str, dict[str, str], float]]]] = []

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        series = self._values[name]
        series[key] = series.get(key, 0.0) + amount

    def value(self, name: str, **labels: str) -> float:
        return self._values.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def gauge(self, read: Callable[[], Iterable[tuple[str, dict[str, str], float]]]) -> None:
        """Register a function giving (name, labels, value) samples when scraped."""
        self._gauges.append(read)

    def render(self) -> str:
        samples: dict[str, dict[Labels, float]] = {k: dict(v) for k, v in self._values.items()}
        for read in self._gauges:
            for name, labels, value in read():
                samples.setdefault(name, {})[tuple(sorted(labels.items()))] = value
        lines: list[str] = []
        for name in sorted(samples):
            kind, text = HELP.get(name, ("untyped", name))
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            for key, value in sorted(samples[name].items()):
                rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in key)
                lines.append(f"{name}{{{rendered}}} {value:g}" if key else f"{name} {value:g}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
