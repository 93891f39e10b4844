"""Forged and malformed webhooks against every webhook route of the daemon's app.

tests/runtime/test_intake.py already pins: Wix signed by another key, `alg: none`, HS256 keyed
with the public key, expired, tampered, truncated, non-string `data`, empty body; Square signed
by another key or for another URL, without its header, tampered; bodies over the limit (413);
redeliveries; an unknown connector (404). This suite adds what a hostile sender tries next,
and HubSpot's route (v3 signatures, a 5-minute window). Every refusal must leave no inbox row
and no dirty link, and be counted as rejected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.emulator import HubSpotEmulator
from connectors.hubspot.emulator.webhooks import SIGNATURE_V3, TIMESTAMP, sign_v3
from connectors.square.emulator import sign as square_sign
from syncd.runtime.daemon import Daemon
from syncd.settings import Settings
from tests.connectors.hubspot.conftest import CLIENT_SECRET, TARGET_URL, TOKEN, hubspot_settings
from tests.runtime.conftest import (
    CONNECTOR,
    HOOK_URL,
    SIGNATURE_KEY,
    SQUARE_HEADER,
    Clients,
    Remotes,
    Site,
    dirty_ids,
    inbox,
)

REJECTED = "syncd_webhooks_rejected_total"
RECEIVED = "syncd_webhooks_received_total"
DUPLICATE = "syncd_webhooks_duplicate_total"
DEEP = "[" * 10_000 + "]" * 10_000  # valid JSON, nested deeper than Python's parser recurses


def _resigned(site: Site, **claims: object) -> str:
    """A genuine event's claims with `claims` changed, signed with the site's own key."""
    event = site.wix_event()
    key = site.remotes.wix_site.keys.private_key
    return jwt.encode({**event.claims, **claims}, key, algorithm="RS256")


def _raw_signed(site: Site, payload: bytes) -> str:
    """`payload` bytes as the JWT payload, signed with the site's key (JSON need not be sane)."""
    key = site.remotes.wix_site.keys.private_key
    return jwt.api_jws.encode(payload, key, algorithm="RS256")


def _outer(site: Site, **outer: object) -> str:
    """A genuine event whose middle layer has `outer` changed, re-signed with the site's key."""
    event = site.wix_event()
    return _resigned(site, data=json.dumps({**event.outer, **outer}))


def _soon(seconds: int) -> int:
    return int(time.time()) + seconds


WIX_FORGERIES: dict[str, Callable[[Site], bytes | str]] = {
    "nbf an hour ahead": lambda site: _resigned(site, nbf=_soon(3600), exp=_soon(7200)),
    "iat an hour ahead": lambda site: _resigned(site, iat=_soon(3600), exp=_soon(7200)),
    "exp is NaN": lambda site: _raw_signed(
        site, b'{"exp": NaN, "data": ' + json.dumps(site.wix_event().claims["data"]).encode() + b"}"
    ),
    "exp is a string": lambda site: _resigned(site, exp=str(_soon(3600))),
    "no exp": lambda site: _raw_signed(
        site, json.dumps({"data": site.wix_event().claims["data"]}).encode()
    ),
    "data is not JSON": lambda site: _resigned(site, data="{not json"),
    "data is a JSON string": lambda site: _resigned(site, data=json.dumps("an event")),
    "data nested too deeply": lambda site: _resigned(site, data=DEEP),
    "event data is not JSON": lambda site: _outer(site, data="{"),
    "event data nested too deeply": lambda site: _outer(site, data=DEEP),
    "event has no id": lambda site: _outer(site, data=json.dumps({"entityFqdn": "x"})),
    "event has no type": lambda site: _outer(site, eventType=None),
    "payload is not JSON": lambda site: _raw_signed(site, b"not json at all"),
    "payload is a JSON list": lambda site: _raw_signed(site, b"[1, 2]"),
    "not ASCII": lambda site: "é".join(site.wix_event().body.split(".")).encode(),
    "binary": lambda site: bytes(range(256)),
    "whitespace only": lambda site: " \r\n\t ",
    "two tokens joined": lambda site: site.wix_event().body + "." + site.wix_event().body,
    "a Square event": lambda site: site.square_body(),
}


@pytest.mark.anyio
@pytest.mark.parametrize("forgery", sorted(WIX_FORGERIES))
async def test_wix_forgeries_are_401_store_nothing_and_count(site: Site, forgery: str) -> None:
    """A Wix body that is not a well-formed, current event signed by the site is 401: no inbox
    row, no dirty link, one rejection counted, nothing received."""
    response = await site.post_wix(WIX_FORGERIES[forgery](site))
    assert response.status_code == 401, response.text
    assert inbox(site.remotes.engine) == []
    assert dirty_ids(site.remotes.engine) == set()
    assert site.metric(REJECTED, "wix") == 1
    assert site.metric(RECEIVED, "wix") == 0


@pytest.mark.anyio
async def test_wix_times_allow_a_little_clock_skew(site: Site) -> None:
    """A genuine event whose iat and nbf are a few seconds ahead of our clock (Wix's clock runs
    a little fast) is still accepted: the not-yet-valid check has leeway."""
    body = _resigned(site, iat=_soon(30), nbf=_soon(30))
    response = await site.post_wix(body)
    assert response.status_code == 200, response.text
    assert len(inbox(site.remotes.engine)) == 1


@pytest.mark.anyio
async def test_wix_without_a_public_key_refuses_every_event(site: Site) -> None:
    """With no webhook public key configured a genuine Wix event is 401 and counted: nothing
    unverifiable is ever stored."""
    site.daemon.intake.wix_public_key = None
    response = await site.post_wix(site.wix_event().body)
    assert response.status_code == 401
    assert inbox(site.remotes.engine) == []
    assert site.metric(REJECTED, "wix") == 1


@pytest.mark.anyio
async def test_wix_event_id_replayed_in_a_fresh_token_is_a_duplicate(site: Site) -> None:
    """A genuine event re-signed later (new iat/exp, same event id) is acknowledged but stored
    once: redeliveries are recognised by event id, not by the bytes of the token."""
    event = site.wix_event()
    first = await site.post_wix(event.body)
    assert first.status_code == 200
    stored = inbox(site.remotes.engine)
    fresh = {**event.claims, "iat": int(time.time()), "exp": _soon(600)}
    again = jwt.encode(fresh, site.remotes.wix_site.keys.private_key, algorithm="RS256")
    assert again != event.body
    second = await site.post_wix(again)
    assert second.status_code == 200
    assert inbox(site.remotes.engine) == stored
    assert (site.metric(RECEIVED, "wix"), site.metric(DUPLICATE, "wix")) == (1, 1)


# -- Square -------------------------------------------------------------------------------------


def _signed(body: str | bytes, url: str = HOOK_URL, key: str = SIGNATURE_KEY) -> dict[str, str]:
    raw = body.encode() if isinstance(body, str) else body
    return {SQUARE_HEADER: square_sign(key, url, raw)}


def _with_signature(value: str) -> Callable[[Site], tuple[str, dict[str, str]]]:
    """A genuine body whose signature header holds `value` (built from the right one)."""

    def build(site: Site) -> tuple[str, dict[str, str]]:
        body = site.square_body()
        right = _signed(body)[SQUARE_HEADER]
        return body, {SQUARE_HEADER: value.format(right=right, half=right[: len(right) // 2])}

    return build


def _hex_signature(site: Site) -> tuple[str, dict[str, str]]:
    body = site.square_body()
    mac = hmac.new(SIGNATURE_KEY.encode(), (HOOK_URL + body).encode(), hashlib.sha256)
    return body, {SQUARE_HEADER: mac.hexdigest()}


def _url_safe_signature(site: Site) -> tuple[str, dict[str, str]]:
    body = site.square_body()
    mac = hmac.new(SIGNATURE_KEY.encode(), (HOOK_URL + body).encode(), hashlib.sha256)
    return body, {SQUARE_HEADER: base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")}


def _other_header(site: Site) -> tuple[str, dict[str, str]]:
    body = site.square_body()
    return body, {"x-square-signature": _signed(body)[SQUARE_HEADER]}


def _for_url(url: str) -> Callable[[Site], tuple[str, dict[str, str]]]:
    def build(site: Site) -> tuple[str, dict[str, str]]:
        body = site.square_body()
        return body, _signed(body, url=url)

    return build


def _signed_body(text: str | bytes) -> Callable[[Site], tuple[str | bytes, dict[str, str]]]:
    """`text` as the body, correctly signed: the signature holds, the body is garbage."""
    return lambda site: (text, _signed(text))


def _empty_key(site: Site) -> tuple[str, dict[str, str]]:
    body = site.square_body()
    return body, _signed(body, key="")


def _other_body(site: Site) -> tuple[str, dict[str, str]]:
    first = site.square_body()
    return site.square_body(), _signed(first)


SQUARE_FORGERIES: dict[str, Callable[[Site], tuple[str | bytes, dict[str, str]]]] = {
    "empty body, signed": _signed_body(b""),
    "empty signature": _with_signature(""),
    "blank signature": _with_signature("   "),
    "signature not base64": _with_signature("not base64 at all!"),
    "signature truncated": _with_signature("{half}"),
    "signature doubled": _with_signature("{right}{right}"),
    "signature with a prefix": _with_signature("sha256={right}"),
    "two signatures": _with_signature("{right}, {right}"),
    "hex signature": _hex_signature,
    "url-safe base64 signature": _url_safe_signature,
    "signature under another header": _other_header,
    "signature of another event": _other_body,
    "signed for the url with a trailing slash": _for_url(HOOK_URL + "/"),
    "signed for the url over http": _for_url(HOOK_URL.replace("https://", "http://")),
    "signed for the url with a query": _for_url(HOOK_URL + "?retry=1"),
    "signed for no url": _for_url(""),
    "signed with an empty key": _empty_key,
    "signed, not JSON": _signed_body("event_id=1&type=x"),
    "signed, not UTF-8": _signed_body(b"\xff\xfe{}"),
    "signed, a JSON list": _signed_body('[{"event_id": "e1", "type": "x"}]'),
    "signed, no event_id": _signed_body('{"type": "loyalty.account.updated"}'),
    "signed, empty event_id": _signed_body('{"event_id": "", "type": "x"}'),
    "signed, event_id a number": _signed_body('{"event_id": 7, "type": "x"}'),
    "signed, nested too deeply": _signed_body(DEEP),
    "a Wix token": lambda site: (site.wix_event().body, {}),
}


@pytest.mark.anyio
@pytest.mark.parametrize("forgery", sorted(SQUARE_FORGERIES))
async def test_square_forgeries_are_401_store_nothing_and_count(site: Site, forgery: str) -> None:
    """A Square body without the right HMAC over the registered URL + exact body, or signed but
    not a well-formed event, is 401: no inbox row, no dirty link, one rejection counted."""
    body, headers = SQUARE_FORGERIES[forgery](site)
    response = await site.http.post(f"/webhooks/{CONNECTOR}", content=body, headers=headers)
    assert response.status_code == 401, response.text
    assert inbox(site.remotes.engine) == []
    assert dirty_ids(site.remotes.engine) == set()
    assert site.metric(REJECTED, CONNECTOR) == 1
    assert site.metric(RECEIVED, CONNECTOR) == 0


@pytest.mark.anyio
async def test_square_signature_header_name_is_case_insensitive(site: Site) -> None:
    """The control for the header cases above: a genuine event whose header name is in another
    case (HTTP header names are) is accepted."""
    body = site.square_body()
    headers = {"X-Square-HmacSha256-Signature": _signed(body)[SQUARE_HEADER]}
    response = await site.http.post(f"/webhooks/{CONNECTOR}", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert len(inbox(site.remotes.engine)) == 1


@pytest.mark.anyio
async def test_square_without_a_signature_key_refuses_every_event(site: Site) -> None:
    """A Square connector with no webhook_signature_key refuses a correctly signed event (401,
    counted): without a key nothing can be verified, so nothing is stored."""
    body = site.square_body()
    site.clients.connector.square.webhook_signature_key = None
    response = await site.post_square(body, _signed(body)[SQUARE_HEADER])
    assert response.status_code == 401
    assert inbox(site.remotes.engine) == []
    assert site.metric(REJECTED, CONNECTOR) == 1


@pytest.mark.anyio
async def test_square_replay_is_stored_once(site: Site) -> None:
    """A genuine Square event sent twice, and its event id again in a re-serialised body that is
    correctly signed, is answered 200 each time and stored once; the repeats count as
    duplicates and mark nothing new."""
    body = site.square_body()
    first = await site.post_square(body, _signed(body)[SQUARE_HEADER])
    assert first.status_code == 200
    stored = inbox(site.remotes.engine)
    assert len(stored) == 1
    again = await site.post_square(body, _signed(body)[SQUARE_HEADER])
    reshaped = json.dumps(json.loads(body), indent=1)
    third = await site.post_square(reshaped, _signed(reshaped)[SQUARE_HEADER])
    assert (again.status_code, third.status_code) == (200, 200)
    assert inbox(site.remotes.engine) == stored
    assert (site.metric(RECEIVED, CONNECTOR), site.metric(DUPLICATE, CONNECTOR)) == (1, 2)


# -- routes -------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path",
    [
        "/webhooks/unknown",
        f"/webhooks/{CONNECTOR.upper()}",
        f"/webhooks/{CONNECTOR}%20",
        f"/webhooks/{CONNECTOR}/extra",
        "/webhooks/..%2Fwix",
        "/webhooks/",
    ],
)
async def test_unknown_connector_is_404_and_leaves_nothing(site: Site, path: str) -> None:
    """A genuine, correctly signed Square event posted to a path naming no configured connector
    is 404: nothing stored, nothing dirty, and no metric series for the made-up name."""
    body = site.square_body()
    response = await site.http.post(path, content=body, headers=_signed(body))
    assert response.status_code == 404
    assert inbox(site.remotes.engine) == []
    assert dirty_ids(site.remotes.engine) == set()
    assert "syncd_webhooks_" not in (await site.http.get("/metrics")).text


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/webhooks/wix", f"/webhooks/{CONNECTOR}"])
async def test_webhook_routes_take_post_only(site: Site, path: str) -> None:
    """GET, PUT and DELETE on a webhook route are 405 and store nothing."""
    for method in ("GET", "PUT", "DELETE"):
        response = await site.http.request(method, path, content=b"x")
        assert response.status_code == 405, method
    assert inbox(site.remotes.engine) == []


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/webhooks/wix", f"/webhooks/{CONNECTOR}"])
async def test_huge_bodies_are_413_and_leave_nothing(site: Site, path: str) -> None:
    """A 5 MB body is refused 413 before it is verified: nothing stored, nothing dirty, counted
    as rejected (the limit itself is pinned in tests/runtime/test_intake.py)."""
    response = await site.http.post(path, content=b"{" * (5 * 1024 * 1024))
    assert response.status_code == 413
    assert inbox(site.remotes.engine) == []
    assert dirty_ids(site.remotes.engine) == set()
    source = "wix" if path.endswith("wix") else CONNECTOR
    assert site.metric(REJECTED, source) == 1


# -- HubSpot ------------------------------------------------------------------------------------

CRM = "crm"


@dataclass
class Crm:
    """A daemon whose one connector is HubSpot, its app reached in process."""

    hubspot: HubSpotEmulator
    daemon: Daemon
    http: httpx.AsyncClient
    remotes: Remotes

    def batch(self) -> str:
        """A genuine batch body: an operator changed a contact's points."""
        [contact] = self.hubspot.seed_contacts([{"email": "c@example.com", "balance": 10}])
        self.hubspot.set_points(contact["id"], 25)
        return self.hubspot.webhooks.batches[-1].body

    def headers(self, body: str, *, ago: float = 0, secret: str = CLIENT_SECRET) -> dict[str, str]:
        """The v3 headers of `body` signed `ago` seconds before now with `secret`."""
        stamp = int((time.time() - ago) * 1000)
        return {
            SIGNATURE_V3: sign_v3(secret, TARGET_URL, body, stamp),
            TIMESTAMP: str(stamp),
            "content-type": "application/json",
        }

    async def post(self, body: str | bytes, headers: dict[str, str]) -> httpx.Response:
        return await self.http.post(f"/webhooks/{CRM}", content=body, headers=headers)


@pytest.fixture
async def crm(remotes: Remotes, clients: Clients) -> AsyncIterator[Crm]:
    hubspot = HubSpotEmulator(TOKEN, client_secret=CLIENT_SECRET, target_url=TARGET_URL)
    connector = HubSpotConnector(hubspot_settings("http://hubspot.invalid"))
    settings = Settings(
        database={"url": remotes.engine.url.render_as_string(hide_password=False)},
        wix=remotes.wix_settings.model_dump(),
        sync={"drift_check_cron": ""},
        connectors=[connector.settings.model_dump()],
    )
    daemon = Daemon(settings, remotes.engine, clients.wix, {CRM: connector})
    async with (
        connector,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(daemon.app()), base_url="http://syncd"
        ) as http,
    ):
        yield Crm(hubspot, daemon, http, remotes)


def _crm_batch(**signing: Any) -> Callable[[Crm], tuple[str, dict[str, str]]]:
    """A genuine batch with its v3 headers made with `signing` changed."""

    def build(crm: Crm) -> tuple[str, dict[str, str]]:
        body = crm.batch()
        return body, crm.headers(body, **signing)

    return build


def _crm_tampered(crm: Crm) -> tuple[str, dict[str, str]]:
    body = crm.batch()
    return body.replace('"objectId": ', '"objectId": 9', 1), crm.headers(body)


def _crm_signed(body: str) -> Callable[[Crm], tuple[str, dict[str, str]]]:
    return lambda crm: (body, crm.headers(body))


def _crm_without_timestamp(crm: Crm) -> tuple[str, dict[str, str]]:
    body = crm.batch()
    return body, {k: v for k, v in crm.headers(body).items() if k != TIMESTAMP}


def _crm_v1_only(crm: Crm) -> tuple[str, dict[str, str]]:
    body = crm.batch()
    return body, crm.hubspot.webhooks.headers_for(body) | {SIGNATURE_V3: ""}


CRM_FORGERIES: dict[str, Callable[[Crm], tuple[str, dict[str, str]]]] = {
    "stale timestamp": _crm_batch(ago=301),
    "timestamp from the future": _crm_batch(ago=-301),
    "wrong secret": _crm_batch(secret="not-the-client-secret"),
    "tampered": _crm_tampered,
    "not an array": _crm_signed('{"subscriptionType": "contact.creation", "objectId": 1}'),
    "an array of numbers": _crm_signed("[1, 2]"),
    "no timestamp": _crm_without_timestamp,
    "v1 signature only": _crm_v1_only,
}


@pytest.mark.anyio
async def test_genuine_hubspot_batch_is_stored(crm: Crm) -> None:
    """The control for the HubSpot cases: a genuine batch, signed now, is 200 and stored."""
    body = crm.batch()
    response = await crm.post(body, crm.headers(body))
    assert response.status_code == 200, response.text
    assert len(inbox(crm.remotes.engine)) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("forgery", sorted(CRM_FORGERIES))
async def test_hubspot_forgeries_are_401_store_nothing_and_count(crm: Crm, forgery: str) -> None:
    """A HubSpot batch whose v3 signature, 5-minute timestamp or shape is wrong is 401: no
    inbox row, no dirty link, one rejection counted."""
    body, headers = CRM_FORGERIES[forgery](crm)
    response = await crm.post(body, headers)
    assert response.status_code == 401, response.text
    assert inbox(crm.remotes.engine) == []
    assert dirty_ids(crm.remotes.engine) == set()
    assert crm.daemon.metrics.value(REJECTED, source=CRM) == 1
