"""The Wix emulator driven by Wix's official JavaScript SDK (`wix_sdk/conformance.mjs`).

The pinned SDK packages are installed with `npm ci` on first use. The test skips, saying why,
when Node/npm are missing or the npm registry cannot be reached.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from syncd.sandbox.server import serve_in_thread
from syncd.sandbox.wix import WixEmulator

SDK_DIR = Path(__file__).parent / "wix_sdk"
API_KEY = "conformance-api-key"
SITE_ID = "11111111-2222-4333-8444-555555555555"
CHECKS = 7


def _install_sdk() -> None:
    if (SDK_DIR / "node_modules" / "@wix" / "loyalty").is_dir():
        return
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm are not installed: the official Wix SDK cannot run here")
    run = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=SDK_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"npm ci could not install the pinned Wix SDK: {last}")


@pytest.mark.node
def test_official_sdk_conformance(tmp_path: Path) -> None:
    """Paging, get, adjust (fresh and stale revision), earn idempotency and webhooks.process."""
    _install_sdk()
    emulator = WixEmulator(site_id=SITE_ID, api_key=API_KEY)
    emulator.activate()
    accounts = emulator.seed_accounts(4)
    emulator.activity(accounts[1]["id"], "earn", 10)
    event = next(e for e in emulator.webhooks.events if e.event_type.endswith("points_updated"))
    body_file = tmp_path / "webhook.jwt"
    body_file.write_text(event.body)
    with serve_in_thread(emulator.app) as server:
        env = os.environ | {
            "WIX_BASE_URL": server.url,
            "WIX_API_KEY": API_KEY,
            "WIX_SITE_ID": SITE_ID,
            "WIX_PUBLIC_KEY": emulator.public_key_pem,
            "WIX_WEBHOOK_BODY_FILE": str(body_file),
        }
        run = subprocess.run(
            ["node", str(SDK_DIR / "conformance.mjs")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    failed = [line for line in lines if not line.get("ok", True)]
    assert run.returncode == 0 and not failed, failed or run.stderr
    assert lines[-1] == {"summary": True, "passed": CHECKS, "failed": 0}
