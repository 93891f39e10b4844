"""`syncd --reconcile` end to end: 500 customers, two emulators on localhost, a real process."""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

from tests.e2e.conftest import Backfill

EXPECTED_LINKED = 150 + 150 + 40 + 30 + 10 + 40 + 40 + 10  # matched + created


def test_backfill_then_nothing_to_do(backfill: Backfill) -> None:
    """Every balance lands where the rules say, the report says so, and a second run writes
    nothing at all."""
    first = backfill.run()
    assert "Traceback" not in first.stderr, first.stderr
    assert first.returncode == 1, first.stdout + first.stderr  # open conflicts remain: exit 1
    assert backfill.mismatches() == []
    report = first.stdout
    assert f"linked        {EXPECTED_LINKED} (created 90, email 340, phone 40)" in report
    assert "created       wix 50, shop 40; 10 could not be created" in report
    assert "conflicts     10 opened, 10 open" in report
    assert "ambiguous     30 accounts" in report
    assert "errors        0" in report
    assert all(count == 1 for count in backfill.tag_counts().values())

    before = backfill.writes()
    second = backfill.run()
    assert second.returncode == 1, second.stdout + second.stderr
    assert backfill.writes() == before
    assert "adjusted      wix 0 (+0 points), shop 0 (+0 points)" in second.stdout
    assert f"linked        {EXPECTED_LINKED} (link {EXPECTED_LINKED})" in second.stdout


def test_backfill_through_faults_writes_nothing_twice(backfill: Backfill) -> None:
    """With 5% 5xx and 2% timeouts-after-commit on both APIs the balances end the same and
    no write is applied twice (counted in the emulators' own ledgers)."""
    for emulator in (backfill.wix, backfill.square):
        emulator.knobs.faults.error_rate = 0.05
        emulator.knobs.faults.timeout_after_commit_rate = 0.02
        emulator.knobs.faults.hang_seconds = 1.5
    run = backfill.run()
    assert "Traceback" not in run.stderr, run.stderr
    assert "errors        0" in run.stdout, run.stdout
    assert backfill.mismatches() == []
    assert all(count == 1 for count in backfill.tag_counts().values()), backfill.tag_counts()
    applied = backfill.square.stats.dump()["applied_writes"]
    assert all(count == 1 for count in applied.values())
    for emulator in (backfill.wix, backfill.square):  # the faults really happened
        faults = emulator.stats.dump()["faults"]
        assert faults.get("error_before_apply", 0) > 0, faults
        assert faults.get("timeout_after_commit", 0) > 0, faults


def test_killed_at_random_points_converges(backfill: Backfill) -> None:
    """SIGKILL the reconcile at random moments, run it again: same result, no double write."""
    rng = random.Random(7)
    killed = 0
    for emulator in (backfill.wix, backfill.square):  # slow enough for the kills to land mid-run
        emulator.knobs.faults.latency_ms = 30
    for _ in range(3):
        process = backfill.start()
        time.sleep(rng.uniform(0.5, 3.0))
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        killed += process.returncode == -signal.SIGKILL
    assert killed >= 2  # the kills landed while it was working, not after it had finished
    assert backfill.mismatches() != []  # ...so the work was left half done
    for emulator in (backfill.wix, backfill.square):
        emulator.knobs.faults.latency_ms = 0
    final = backfill.run()
    assert "Traceback" not in final.stderr, final.stderr
    assert "errors        0" in final.stdout, final.stdout
    assert backfill.mismatches() == []
    assert all(count == 1 for count in backfill.tag_counts().values()), backfill.tag_counts()


def test_dry_run_writes_nothing_and_saves_the_plan(backfill: Backfill, tmp_path: Path) -> None:
    """--dry-run --plan: a summary and a per-account plan, and no write on either side."""
    before = backfill.writes()
    plan = tmp_path / "plan.json"
    dry = backfill.run("--dry-run", "--plan", str(plan))
    assert "Traceback" not in dry.stderr, dry.stderr
    assert backfill.writes() == before
    assert "dry run: nothing written" in dry.stdout
    assert "would create  wix 50, shop 50" in dry.stdout
    rows = json.loads(plan.read_text())
    assert len(rows) == 380  # the matched pairs; created accounts come with the real run
    by_wix = {r["wix_account_id"]: r for r in rows}
    for customer in backfill.shop.of("different"):
        row = by_wix[customer.wix_id]
        assert row["to_wix"] == customer.square_balance - customer.wix_balance
    negative = [by_wix[c.wix_id] for c in backfill.shop.of("negative")]
    assert all(r["conflicts"] == "negative_balance" for r in negative)
    real = backfill.run()
    assert "errors        0" in real.stdout and backfill.mismatches() == []


def test_operator_resolves_conflicts_from_the_command_line(backfill: Backfill) -> None:
    """`syncd conflicts resolve ID --take wix` and `--take value N` bring both sides of the
    link to the chosen balance with tagged writes, and close the conflict."""
    backfill.run()
    listed = backfill.syncd("conflicts", "list", "--json")
    open_ = json.loads(listed.stdout)
    assert len(open_) == 10 and listed.returncode == 1
    first, second = open_[0], open_[1]
    took = backfill.syncd("conflicts", "resolve", str(first["id"]), "--take", "wix")
    assert took.returncode == 0, took.stdout + took.stderr
    valued = backfill.syncd("conflicts", "resolve", str(second["id"]), "--take", "value", "50")
    assert valued.returncode == 0, valued.stdout + valued.stderr
    wix = {a["id"]: int(a["points"]["balance"]) for a in backfill.wix.state.all_accounts()}
    assert wix[first["wix_account"]] == 0
    assert int(backfill.square.account(first["external_account"])["balance"]) == 0
    assert wix[second["wix_account"]] == 50
    assert int(backfill.square.account(second["external_account"])["balance"]) == 50
    left = json.loads(backfill.syncd("conflicts", "list", "--json").stdout)
    assert {c["id"] for c in left} == {c["id"] for c in open_[2:]}
    again = backfill.syncd("conflicts", "resolve", str(first["id"]), "--take", "wix")
    assert again.returncode == 2 and "already RESOLVED" in again.stderr
    assert all(count == 1 for count in backfill.tag_counts().values())
