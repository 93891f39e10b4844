"""The daemon's HTTP app in process: webhook intake (verify, store once, mark dirty, answer)
and the operations endpoints, with webhooks signed by the emulators themselves."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.square.emulator import sign as square_sign
from syncd.sandbox.wix import WebhookEvent
from syncd.wix.webhooks import MAX_BODY_BYTES
from tests.runtime.conftest import (
    CONNECTOR,
    HOOK_URL,
    SIGNATURE_KEY,
    SQUARE_HEADER,
    SQUARE_TOKEN,
    WIX_API_KEY,
    Site,
    StoreFault,
    dirty_ids,
    inbox,
)

OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


# -- Wix webhooks ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_genuine_wix_webhooks_are_stored_and_mark_the_link(site: Site) -> None:
    """Events Wix delivers are answered 200, each stored once, the link marked dirty, and no
    remote API is called before the answer."""
    site.deliver_to_daemon()
    calls = site.clients.wix.calls, site.clients.connector.calls
    site.remotes.wix_site.activity(site.anna.wix_id, "redeem", 30)
    attempts = await site.remotes.wix_site.webhooks.flush()
    assert [a.status for a in attempts] == [200, 200]  # points_updated, account_updated
    events = site.remotes.wix_site.webhooks.events
    assert sorted(inbox(site.remotes.engine)) == sorted(
        ("wix", e.id, site.anna.wix_id) for e in events
    )
    assert dirty_ids(site.remotes.engine) == {site.anna.link_id}
    assert site.metric("syncd_webhooks_received_total", "wix") == 2
    assert (site.clients.wix.calls, site.clients.connector.calls) == calls


@pytest.mark.anyio
async def test_wix_redelivery_is_acknowledged_and_dropped(site: Site) -> None:
    """A second delivery of the same event is 200, counted as a duplicate, stores nothing."""
    body = site.wix_event().body
    assert (await site.post_wix(body)).status_code == 200
    stored = inbox(site.remotes.engine)
    assert (await site.post_wix(body)).status_code == 200
    assert inbox(site.remotes.engine) == stored
    assert site.metric("syncd_webhooks_received_total", "wix") == 1
    assert site.metric("syncd_webhooks_duplicate_total", "wix") == 1


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _wix_forgeries(event: WebhookEvent, private_key: rsa.RSAPrivateKey, public_pem: str) -> dict:
    """Bodies that must not verify, each breaking one thing of a genuine event's JWT."""
    claims = event.claims
    head, payload, signature = event.body.split(".")
    tampered = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered["data"] = tampered["data"].replace(event.id, "forged-event-id")
    assert tampered["data"] != claims["data"]
    none_head = _b64(b'{"alg":"none","typ":"JWT"}')
    hs_head = _b64(b'{"alg":"HS256","typ":"JWT"}')
    hs_mac = hmac.new(public_pem.encode(), f"{hs_head}.{payload}".encode(), hashlib.sha256)
    now = int(time.time())
    return {
        "wrong key": jwt.encode(claims, OTHER_KEY, algorithm="RS256"),
        "alg none": f"{none_head}.{payload}.",
        "hs256 signed with the public key": f"{hs_head}.{payload}.{_b64(hs_mac.digest())}",
        "expired": jwt.encode(
            {**claims, "iat": now - 3600, "exp": now - 1}, private_key, algorithm="RS256"
        ),
        "tampered payload": f"{head}.{_b64(json.dumps(tampered).encode())}.{signature}",
        "truncated": event.body[: len(event.body) // 2],
        "data is a number": jwt.encode({**claims, "data": 5}, private_key, algorithm="RS256"),
        "data is a list": jwt.encode({**claims, "data": ["x"]}, private_key, algorithm="RS256"),
        "empty body": "",
    }


WIX_FORGERIES = (
    "wrong key",
    "alg none",
    "hs256 signed with the public key",
    "expired",
    "tampered payload",
    "truncated",
    "data is a number",
    "data is a list",
    "empty body",
)


@pytest.mark.anyio
@pytest.mark.parametrize("forgery", WIX_FORGERIES)
async def test_forged_wix_webhooks_are_401_and_leave_nothing(site: Site, forgery: str) -> None:
    """A body that is not a genuine, unexpired RS256 event from the site's key is 401: no row
    in inbox_events, no link dirty, counted as rejected."""
    wix_site = site.remotes.wix_site
    bodies = _wix_forgeries(site.wix_event(), wix_site.keys.private_key, wix_site.public_key_pem)
    assert set(bodies) == set(WIX_FORGERIES)
    response = await site.post_wix(bodies[forgery])
    assert response.status_code == 401
    assert inbox(site.remotes.engine) == []
    assert dirty_ids(site.remotes.engine) == set()
    assert site.metric("syncd_webhooks_rejected_total", "wix") == 1


async def _chunks(size: int) -> AsyncIterator[bytes]:
    step = 64 * 1024
    for start in range(0, size, step):
        yield b"a" * min(step, size - start)


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/webhooks/wix", f"/webhooks/{CONNECTOR}"])
async def test_bodies_over_the_limit_are_413(site: Site, path: str) -> None:
    """A body over the limit is 413 whether it declares its length or streams it chunked; a
    body of exactly the limit is read (and refused for its signature, 401)."""
    declared = await site.http.post(path, content=b"a" * (MAX_BODY_BYTES + 1))
    assert declared.status_code == 413
    chunked = httpx.Request("POST", f"http://syncd{path}", content=_chunks(MAX_BODY_BYTES + 1))
    assert "content-length" not in chunked.headers
    assert (await site.http.send(chunked)).status_code == 413
    at_limit = await site.http.post(path, content=b"a" * MAX_BODY_BYTES)
    assert at_limit.status_code == 401
    assert inbox(site.remotes.engine) == []
    source = "wix" if path.endswith("wix") else CONNECTOR
    assert site.metric("syncd_webhooks_rejected_total", source) == 3


@pytest.mark.anyio
async def test_wix_webhook_whose_marking_failed_marks_on_redelivery(site: Site) -> None:
    """If the database fails after an event is stored but before its link is marked, the
    answer is not 200, and Wix's redelivery then leaves the link dirty (no change is lost)."""
    site.deliver_to_daemon(raise_app_exceptions=False)
    site.remotes.wix_site.knobs.webhook_retry_gaps_seconds = (0.0,)  # one quick redelivery
    StoreFault(site.remotes.engine, "UPDATE links", times=2)  # both events' first marking
    site.remotes.wix_site.activity(site.anna.wix_id, "earn", 10)
    attempts = await site.remotes.wix_site.webhooks.flush()
    statuses = [a.status for a in attempts]
    assert statuses.count(500) == 2 and statuses[-1] == 200  # refused, then redelivered
    assert dirty_ids(site.remotes.engine) == {site.anna.link_id}


# -- Square webhooks ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_genuine_square_webhooks_mark_the_link(site: Site) -> None:
    """Events Square delivers (signed over the registered URL) are 200, stored once under the
    connector's name, and mark the link; a redelivery is a duplicate."""
    site.deliver_to_daemon()
    site.remotes.square.activity(site.anna.square_id, "sale", 20)
    attempts = await site.remotes.square.webhooks.flush()
    assert [a.status for a in attempts] == [200, 200]  # event.created, account.updated
    events = site.remotes.square.webhooks.events
    assert sorted(inbox(site.remotes.engine)) == sorted(
        (CONNECTOR, e.event_id, site.anna.square_id) for e in events
    )
    assert dirty_ids(site.remotes.engine) == {site.anna.link_id}
    body = events[-1].body
    signature = site.remotes.square.webhooks.signature_for(body)
    assert (await site.post_square(body, signature)).status_code == 200
    assert len(inbox(site.remotes.engine)) == 2
    assert site.metric("syncd_webhooks_duplicate_total", CONNECTOR) == 1


SQUARE_FORGERIES: dict[str, Callable[[str], tuple[str, str | None]]] = {
    "wrong key": lambda body: (body, square_sign("not-the-key", HOOK_URL, body.encode())),
    "signed for another url": lambda body: (
        body,
        square_sign(SIGNATURE_KEY, "https://elsewhere.example.com/webhooks/shop", body.encode()),
    ),
    "no signature header": lambda body: (body, None),
    "tampered body": lambda body: (
        body.replace('"event_id": "', '"event_id": "forged-', 1),
        square_sign(SIGNATURE_KEY, HOOK_URL, body.encode()),
    ),
}


@pytest.mark.anyio
@pytest.mark.parametrize("forgery", sorted(SQUARE_FORGERIES))
async def test_forged_square_webhooks_are_401_and_leave_nothing(site: Site, forgery: str) -> None:
    """A Square body whose HMAC does not match key + registered URL + body is 401 and stores
    nothing, marks nothing."""
    genuine = site.square_body()
    assert site.remotes.square.webhooks.signature_for(genuine) == square_sign(
        SIGNATURE_KEY, HOOK_URL, genuine.encode()
    )  # the forgeries differ from the genuine case in one thing only
    body, signature = SQUARE_FORGERIES[forgery](genuine)
    response = await site.post_square(body, signature)
    assert response.status_code == 401
    assert inbox(site.remotes.engine) == []
    assert dirty_ids(site.remotes.engine) == set()
    assert site.metric("syncd_webhooks_rejected_total", CONNECTOR) == 1


@pytest.mark.anyio
async def test_webhook_for_unknown_connector_is_404(site: Site) -> None:
    """A webhook path naming no configured connector is 404 and stores nothing."""
    body = site.square_body()
    signature = site.remotes.square.webhooks.signature_for(body)
    response = await site.http.post(
        "/webhooks/unknown", content=body, headers={SQUARE_HEADER: signature}
    )
    assert response.status_code == 404
    assert inbox(site.remotes.engine) == []


# -- operations endpoints -------------------------------------------------------------------


@pytest.mark.anyio
async def test_healthz(site: Site) -> None:
    """/healthz answers 200 as long as the process serves."""
    response = await site.http.get("/healthz")
    assert response.status_code == 200


@pytest.mark.anyio
async def test_readyz_before_recovery_is_503(site: Site) -> None:
    """Before the writes left by the last run are recovered, /readyz is 503 and says why."""
    response = await site.http.get("/readyz")
    assert response.status_code == 503
    assert any("recover" in reason for reason in response.json()["reasons"])


async def _until(check: Callable[[], object], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.02)


@pytest.mark.anyio
async def test_readyz_follows_the_program_status(site: Site) -> None:
    """A running daemon is 503 while the program is PAUSED and 200 once Wix says (by its
    program_updated webhook) that it is ACTIVE again."""
    site.remotes.wix_site.set_program_status("PAUSED")
    stop = asyncio.Event()
    running = asyncio.create_task(site.daemon.run(stop))
    try:
        await _until(lambda: site.daemon.state.recovered or running.done())
        paused = await site.http.get("/readyz")
        assert paused.status_code == 503
        assert any("PAUSED" in reason for reason in paused.json()["reasons"])
        site.deliver_to_daemon()
        site.remotes.wix_site.activate()
        await site.remotes.wix_site.webhooks.flush()
        ready: list[int] = []

        async def probe() -> bool:
            ready.append((await site.http.get("/readyz")).status_code)
            return ready[-1] == 200

        deadline = time.monotonic() + 5
        while not await probe():
            assert time.monotonic() < deadline, f"never ready: {ready[-1]}"
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)


@pytest.mark.anyio
async def test_metrics_page_has_the_counters(site: Site) -> None:
    """/metrics is Prometheus text with the webhook counters and the dirty-links gauge."""
    body = site.wix_event().body
    await site.post_wix(body)
    await site.post_wix(body)
    await site.post_wix("not a jwt")
    response = await site.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    samples = dict(line.rsplit(" ", 1) for line in lines if line and not line.startswith("#"))
    assert "# TYPE syncd_webhooks_received_total counter" in lines
    assert samples['syncd_webhooks_received_total{source="wix"}'] == "1"
    assert samples['syncd_webhooks_duplicate_total{source="wix"}'] == "1"
    assert samples['syncd_webhooks_rejected_total{source="wix"}'] == "1"
    assert samples["syncd_dirty_links"] == "1"
    assert "# TYPE syncd_dirty_links gauge" in lines
    assert 'syncd_api_calls_total{remote="wix"}' in samples


@pytest.mark.anyio
async def test_status_reports_without_secrets(site: Site) -> None:
    """/status is JSON about links and backlog and never contains a credential."""
    await site.post_wix(site.wix_event().body)
    response = await site.http.get("/status")
    assert response.status_code == 200
    document = response.json()
    assert document["connectors"][CONNECTOR]["links"] == 1
    assert document["dirty_links"] == 1
    for secret in (WIX_API_KEY, SQUARE_TOKEN, SIGNATURE_KEY):
        assert secret not in response.text


# -- the drift check ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_drift_check_marks_only_the_links_apart(site: Site) -> None:
    """A balance changed behind every webhook and feed is found, counted and re-synced; a link
    in step is left alone; the drift check itself writes nothing remote."""
    bea = site.remotes.customer(2)
    for customer in (site.anna, bea):
        await site.daemon.appliers[CONNECTOR].sync(customer.link_id)
    with site.remotes.square.state.lock:  # a change no webhook or feed will ever report
        site.remotes.square.state.accounts[bea.square_id].balance += 40
    writes = len(site.remotes.wix_site.state.all_transactions()), len(site.remotes.square.events())
    await site.daemon.drift_check()
    assert dirty_ids(site.remotes.engine) == {bea.link_id}
    assert site.daemon.metrics.value("syncd_drift_repairs_total", connector=CONNECTOR) == 1
    assert (
        len(site.remotes.wix_site.state.all_transactions()),
        len(site.remotes.square.events()),
    ) == writes
    result = await site.daemon.appliers[CONNECTOR].sync(bea.link_id)
    assert result.wix_points == 40
