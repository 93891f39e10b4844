"""What a reconcile run did (or, dry, would do): the summary table and the per-account plan."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from syncd.errors import ConfigError


@dataclass(frozen=True)
class PlanRow:
    """One pair of accounts and what the plan does to it."""

    wix_account_id: str
    external_id: str
    matched_by: str
    wix_balance: int
    ext_balance: int
    to_wix: int = 0
    to_external: int = 0
    held: int = 0
    conflicts: str = ""


@dataclass
class Report:
    connector: str
    dry_run: bool
    wix_accounts: int = 0
    ext_accounts: int = 0
    linked: dict[str, int] = field(default_factory=dict)
    created_wix: int = 0
    created_external: int = 0
    not_created: list[str] = field(default_factory=list)
    wix_adjusted: int = 0
    wix_points: int = 0
    ext_adjusted: int = 0
    ext_points: int = 0
    unchanged: int = 0
    conflicts_opened: int = 0
    conflicts_open: int = 0
    ambiguous: int = 0
    wix_only: int = 0
    external_only: int = 0
    missing: int = 0
    errors: list[str] = field(default_factory=list)
    stopped: str | None = None
    wix_calls: int = 0
    external_calls: int = 0
    seconds: float = 0.0
    resumed: bool = False

    @property
    def clean(self) -> bool:
        """Nothing left for a person: no errors, no open conflicts, no ambiguous match."""
        return not (self.errors or self.conflicts_open or self.ambiguous or self.stopped)

    def render(self) -> str:
        verb = "would adjust" if self.dry_run else "adjusted"
        linked = sum(self.linked.values())
        how = ", ".join(f"{k} {v}" for k, v in sorted(self.linked.items())) or "none"
        lines = [
            f"reconcile {self.connector}{' (dry run: nothing written)' if self.dry_run else ''}"
            f"{' (resumed)' if self.resumed else ''}",
            f"  accounts      wix {self.wix_accounts}, {self.connector} {self.ext_accounts}",
            f"  linked        {linked} ({how})",
            f"  {'would create' if self.dry_run else 'created':<13} wix {self.created_wix}, "
            f"{self.connector} {self.created_external}"
            + (f"; {len(self.not_created)} could not be created" if self.not_created else ""),
            f"  {verb:<13} wix {self.wix_adjusted} ({self.wix_points:+,} points), "
            f"{self.connector} {self.ext_adjusted} ({self.ext_points:+,} points)",
            f"  unchanged     {self.unchanged}",
            f"  conflicts     {self.conflicts_opened} opened, {self.conflicts_open} open",
            f"  ambiguous     {self.ambiguous} accounts share a match key with several others",
            f"  unmatched     wix only {self.wix_only}, {self.connector} only "
            f"{self.external_only}, linked but gone {self.missing}",
            f"  errors        {len(self.errors)}",
        ]
        calls = f"wix {self.wix_calls}, {self.connector} {self.external_calls}"
        lines.append(f"  API calls     {calls}; {self.seconds:.1f}s")
        lines += [f"  error: {e}" for e in self.errors[:20]]
        if len(self.errors) > 20:
            lines.append(f"  ... and {len(self.errors) - 20} more errors")
        if self.stopped:
            lines.append(f"stopped: {self.stopped}")
        return "\n".join(lines)


def write_plan(path: Path, rows: Iterable[PlanRow]) -> None:
    """The per-account plan as CSV or JSON, chosen by the file's extension (streamed)."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ConfigError(f"--plan {path}: use a .csv or .json file name")
    try:
        with path.open("w", newline="", encoding="utf-8") as handle:
            if suffix == ".json":
                handle.write("[")
                for index, row in enumerate(rows):
                    handle.write(",\n" if index else "\n")
                    handle.write(json.dumps(asdict(row)))
                handle.write("\n]\n")
            else:
                writer = csv.DictWriter(handle, fieldnames=list(PlanRow.__dataclass_fields__))
                writer.writeheader()
                writer.writerows(asdict(r) for r in rows)
    except OSError as exc:
        raise ConfigError(f"--plan {path}: cannot write ({exc.strerror})") from None
