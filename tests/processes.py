"""syncd as an operator runs it: its own process, against a config file, on a free port.

The environment is this one without `SYNCD_*` variables (so a developer's settings never leak
into a test), plus what a test adds.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

SYNCD = [sys.executable, "-m", "syncd"]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without SYNCD_* variables, plus `extra`."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")} | (extra or {})


def free_port() -> int:
    """A localhost port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_syncd(
    *args: str,
    config: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`syncd ARGS [--config CONFIG]` to its end: exit code, stdout and stderr."""
    return subprocess.run(
        [*SYNCD, *args, *(["--config", str(config)] if config else [])],
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_daemon(
    config: Path, port: int, *, env: dict[str, str] | None = None, ready_within: float = 30
) -> subprocess.Popen[str]:
    """`syncd run --config CONFIG`, once its /readyz on `port` answers 200."""
    process = subprocess.Popen(
        [*SYNCD, "run", "--config", str(config)],
        env=clean_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + ready_within
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise AssertionError(f"the daemon exited: {process.communicate()[1]}")
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the daemon was not ready within {ready_within} s")
