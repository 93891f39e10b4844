"""The `syncd` command as a person runs it: separate processes, exit codes, one-line errors."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.processes import SYNCD, clean_env, free_port
from tests.test_settings import GOOD


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SYNCD, *args],
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("syncd: ")]
    assert errors and "Traceback" not in result.stderr
    return errors[-1]


def test_check_config_masks_secrets(tmp_path: Path) -> None:
    """A good file prints every key with secrets masked, exit 0."""
    config = tmp_path / "syncd.toml"
    config.write_text(GOOD)
    result = run("check-config", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "wix.api_key = ********" in result.stdout
    assert "key-in-file" not in result.stdout + result.stderr
    assert "square-token" not in result.stdout + result.stderr


def test_malformed_config_exit_2(tmp_path: Path) -> None:
    """Broken TOML: one line, exit 2, no traceback."""
    config = tmp_path / "syncd.toml"
    config.write_text("[wix\n")
    assert "invalid TOML" in assert_one_line_error(run("check-config", "--config", str(config)), 2)


def test_missing_secret_exit_2(tmp_path: Path) -> None:
    """No Wix key anywhere: one line naming the keys to set, exit 2."""
    config = tmp_path / "syncd.toml"
    config.write_text(GOOD.replace('api_key = "key-in-file"\n', ""))
    line = assert_one_line_error(run("check-config", "--config", str(config)), 2)
    assert "no credentials" in line and "api_key" in line


def test_unknown_command_exit_2() -> None:
    """A usage error is one line and exit 2."""
    assert "invalid choice" in assert_one_line_error(run("frobnicate"), 2)


def test_unreachable_wix_is_a_retry_message(tmp_path: Path) -> None:
    """--connect to a Wix that is not there: retries logged, then one clear line, exit 1."""
    config = tmp_path / "syncd.toml"
    db = tmp_path / "syncd.db"
    config.write_text(GOOD.replace('url = "sqlite:///syncd.db"', f'url = "sqlite:///{db}"'))
    env = {"SYNCD_WIX__BASE_URL": "http://127.0.0.1:1", "SYNCD_WIX__TIMEOUT_SECONDS": "1"}
    result = run("check-config", "--config", str(config), "--connect", env=env)
    line = assert_one_line_error(result, 1)
    assert "cannot reach http://127.0.0.1:1" in line and "check wix.base_url" in line
    assert "wix.retry" in result.stderr
    assert "database: reachable, schema up to date" in result.stdout


def _start_sandbox() -> tuple[int, subprocess.Popen[str]]:
    """`syncd sandbox` on a free port, answering; a port taken between choosing it and binding
    it (other tests bind ports too) is chosen again, at most three times."""
    for _ in range(3):
        port = free_port()
        server = subprocess.Popen(
            [*SYNCD, "sandbox", "--port", str(port), "--accounts", "3"],
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/_sandbox/stats", timeout=1)
                return port, server
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        error = server.stderr.read() if server.stderr and server.poll() is not None else ""
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=10)
        if "address already in use" not in error:
            pytest.fail(f"sandbox did not start: {error}")
    pytest.fail("sandbox did not start: three ports were taken before it could bind them")


def test_sandbox_serves_wix_and_check_config_connects(tmp_path: Path) -> None:
    """`syncd sandbox --port N` serves the emulators (Wix on N, Square on N+1, HubSpot on
    N+2); check-config --connect reaches Wix; HubSpot lists its seeded contacts."""
    port, server = _start_sandbox()
    try:
        env = {
            "SYNCD_WIX__BASE_URL": f"http://127.0.0.1:{port}",
            "SYNCD_WIX__SITE_ID": "sandbox-site",
            "SYNCD_WIX__API_KEY": "sandbox-api-key",
            "SYNCD_DATABASE__URL": f"sqlite:///{tmp_path / 'syncd.db'}",
        }
        result = run("check-config", "--connect", env=env)
        assert result.returncode == 0, result.stderr
        assert "program 'Sandbox Rewards' is ACTIVE" in result.stdout
        contacts = httpx.get(
            f"http://127.0.0.1:{port + 2}/crm/v3/objects/contacts",
            headers={"authorization": "Bearer sandbox-hubspot-token"},
            timeout=5,
        ).json()
        assert len(contacts["results"]) == 3
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_demo_runs_to_a_clean_end() -> None:
    """The README's first command: `syncd demo` backfills, runs the daemon while customers act
    on both sides through lossy webhooks, stops by itself and finds every balance right; piped,
    its live view is plain lines, and nothing prints a traceback."""
    result = run("demo", "--accounts", "80", "--duration", "5", timeout=120)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Traceback" not in result.stderr
    assert "linked (created 12, email 80)" in out  # 12 customers known only at the till
    assert "every balance matches: 92 of 92" in out
    played = re.search(r"played\s+(\d+) changes?: (\d+) online .*?, (\d+) at the till", out)
    writes = re.search(r"writes\s+to Wix (\d+), to Square (\d+); each of", out)
    assert played and writes, out
    assert int(played[2]) > 0 and int(played[3]) > 0
    assert int(writes[1]) > 0 and int(writes[2]) > 0
    assert "\x1b[" not in out  # not a terminal: no cursor movement


def test_connector_keys_are_checked_by_their_type(tmp_path: Path) -> None:
    """A misspelt Square key and an unknown connector type: one line each, exit 2."""
    config = tmp_path / "syncd.toml"
    config.write_text(
        GOOD.replace('access_token = "square-token"', 'acess_token = "square-token"')
        + '[[connectors]]\nname = "crm"\ntype = "hubspotty"\n'
    )
    result = run("check-config", "--config", str(config))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("syncd: ")]
    assert "syncd: connectors[0].access_token: required key is missing" in lines
    assert any(line.startswith("syncd: connectors[0].acess_token: unknown key") for line in lines)
    assert any("connectors[1].type: unknown connector type 'hubspotty'" in line for line in lines)
    assert "square-token" not in result.stderr


def test_plan_needs_dry_run(tmp_path: Path) -> None:
    """--plan without --dry-run is a usage error (a real run reports as it applies)."""
    config = tmp_path / "syncd.toml"
    config.write_text(GOOD)
    line = assert_one_line_error(run("--reconcile", "--config", str(config), "--plan", "p.csv"), 2)
    assert "--plan goes with --dry-run" in line


def test_status_and_conflicts_read_the_store(tmp_path: Path) -> None:
    """`syncd status` and `syncd conflicts list` report from the database, no daemon needed;
    an open conflict makes `conflicts list` exit 1."""
    import json

    from syncd.store.db import open_store, session_scope
    from syncd.store.models import Conflict, Link

    db = tmp_path / "syncd.db"
    config = tmp_path / "syncd.toml"
    config.write_text(GOOD.replace('url = "sqlite:///syncd.db"', f'url = "sqlite:///{db}"'))
    engine = open_store(f"sqlite:///{db}")
    with session_scope(engine) as session:
        link = Link(connector="shop", wix_account_id="w1", external_id="x1", dirty=True)
        session.add(link)
        session.flush()
        session.add(
            Conflict(
                link_id=link.id,
                kind="negative_balance",
                side="external",
                amount=-20,
                detail="-50 would take wix from 30 below zero",
            )
        )
    engine.dispose()
    status = run("status", "--config", str(config), "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["links"] == {"shop": 1} and data["dirty_links"] == 1
    assert data["conflicts_open"] == {"shop": 1}
    listed = run("conflicts", "list", "--config", str(config))
    assert listed.returncode == 1
    assert "negative_balance" in listed.stdout and "-20" in listed.stdout


def test_connectors_lists_installed_types() -> None:
    """`syncd connectors` lists the types found through the syncd.connectors entry points."""
    result = run("connectors")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert set(rows) >= {"square", "hubspot", "sql"}
    assert "idempotency keys" in rows["square"] and "absolute writes" in rows["hubspot"]
