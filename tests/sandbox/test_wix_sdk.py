"""The Wix emulator driven by Wix's official JavaScript SDK (conformance.mjs in wix_sdk/).

Needs node and the pinned SDK: `cd tests/sandbox/wix_sdk && npm ci` (or point
SYNCD_WIX_SDK_DIR at a folder holding conformance.mjs and its node_modules).
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
from tests.sandbox.conftest import API_KEY, SITE_ID

SDK_DIR = Path(os.environ.get("SYNCD_WIX_SDK_DIR", Path(__file__).parent / "wix_sdk"))


@pytest.mark.node
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.skipif(
    not (SDK_DIR / "node_modules" / "@wix" / "sdk").is_dir(),
    reason=f"run `npm ci` in {SDK_DIR} to install the pinned Wix SDK",
)
def test_official_sdk_conformance(tmp_path: Path) -> None:
    """Paging, get, adjust (fresh and stale revision), earn idempotency and webhooks.process."""
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
    assert lines[-1] == {"summary": True, "passed": 7, "failed": 0}
