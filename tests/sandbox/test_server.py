"""The emulator on a real port: served in a thread, webhooks sent by the background task."""

from __future__ import annotations

import time

import httpx

from syncd.sandbox.server import serve_in_thread
from syncd.sandbox.wix import WixEmulator
from tests.sandbox.conftest import API_KEY, SITE_ID, Receiver


def test_emulator_on_a_real_port_delivers_webhooks_in_the_background() -> None:
    """Over TCP: auth, an adjust, and its webhooks reaching a served receiver unprompted."""
    receiver = Receiver()
    emulator = WixEmulator(site_id=SITE_ID, api_key=API_KEY)
    emulator.activate()
    account = emulator.seed_accounts([{"email": "tcp@x.io", "balance": 5}])[0]
    with serve_in_thread(receiver.app) as hook_server, serve_in_thread(emulator.app) as server:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
        with httpx.Client(base_url=server.url) as http:
            http.put("/_sandbox/webhooks", json={"url": f"{hook_server.url}/hook"})
            assert http.get("/loyalty-programs/v1/program").status_code == 401
            response = http.post(
                f"/loyalty-accounts/v1/accounts/{account['id']}/adjust-points",
                headers={"Authorization": API_KEY, "wix-site-id": SITE_ID},
                json={"amount": 5, "revision": account["revision"], "description": "tcp"},
            )
            assert response.status_code == 200
            deadline = time.monotonic() + 5
            while len(receiver.texts) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            log = http.get("/_sandbox/webhooks/log").json()
    # A slow answer on a loaded machine is retried (as Wix does), so count distinct events.
    assert len(set(receiver.texts)) == 3
    assert {a["event_id"] for a in log["attempts"] if a["ok"]} == {
        a["event_id"] for a in log["attempts"]
    }


def test_stop_frees_the_port() -> None:
    """After stop() nothing listens on the port any more."""
    server = serve_in_thread(WixEmulator().app)
    url = server.url
    server.stop()
    try:
        httpx.get(f"{url}/_sandbox/stats", timeout=0.5)
    except httpx.ConnectError:
        return
    raise AssertionError("the server still answers after stop()")
