"""Who may call the Wix emulator: API key + site header, or an OAuth app token."""

from __future__ import annotations

import httpx
import pytest

from syncd.sandbox.wix import WixEmulator
from tests.sandbox.conftest import API_KEY, SITE_ID, ManualClock

PROGRAM = "/loyalty-programs/v1/program"


@pytest.mark.anyio
async def test_api_key_with_site_header_is_accepted(client: httpx.AsyncClient) -> None:
    """The raw API key plus wix-site-id reads the program."""
    response = await client.get(PROGRAM)
    assert response.status_code == 200
    assert response.json()["loyaltyProgram"]["status"] == "ACTIVE"
    assert response.headers["x-wix-request-id"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "wrong-key", "wix-site-id": SITE_ID}, 401),
        ({"Authorization": f"Bearer {API_KEY}", "wix-site-id": SITE_ID}, 401),
        ({"Authorization": API_KEY}, 403),
        ({"Authorization": API_KEY, "wix-site-id": "another-site"}, 403),
    ],
)
async def test_bad_credentials_are_refused(
    admin: httpx.AsyncClient, headers: dict[str, str], status: int
) -> None:
    """Missing or wrong key is 401; the key without (or with another) site header is 403."""
    response = await admin.get(PROGRAM, headers=headers)
    assert response.status_code == status
    assert response.json()["message"]
    assert response.headers["x-wix-request-id"]


@pytest.mark.anyio
async def test_oauth_token_works_until_it_expires(
    emulator: WixEmulator, admin: httpx.AsyncClient, clock: ManualClock
) -> None:
    """client_credentials gives a 4-hour token sent raw in Authorization; then it is 401."""
    creds = emulator.credentials
    response = await admin.post(
        "/oauth2/token",
        json={
            "grant_type": "client_credentials",
            "client_id": creds.app_id,
            "client_secret": creds.app_secret,
            "instance_id": creds.instance_id,
        },
    )
    assert response.status_code == 200
    token = response.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 14400
    auth = {"Authorization": token["access_token"]}
    assert (await admin.get(PROGRAM, headers=auth)).status_code == 200
    clock.advance(14399)
    assert (await admin.get(PROGRAM, headers=auth)).status_code == 200
    clock.advance(1)
    assert (await admin.get(PROGRAM, headers=auth)).status_code == 401


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"client_secret": "nope"}, 401),
        ({"instance_id": "other"}, 401),
        ({"grant_type": "password"}, 400),
    ],
)
async def test_oauth_token_refuses_bad_requests(
    emulator: WixEmulator, admin: httpx.AsyncClient, change: dict[str, str], status: int
) -> None:
    """Wrong secret or instance is 401; another grant type is 400."""
    creds = emulator.credentials
    body = {
        "grant_type": "client_credentials",
        "client_id": creds.app_id,
        "client_secret": creds.app_secret,
        "instance_id": creds.instance_id,
    } | change
    assert (await admin.post("/oauth2/token", json=body)).status_code == status


@pytest.mark.anyio
async def test_admin_routes_need_no_credentials(admin: httpx.AsyncClient) -> None:
    """/_sandbox routes answer without any Authorization header."""
    response = await admin.get("/_sandbox/stats")
    assert response.status_code == 200
    assert response.headers["x-wix-request-id"]


@pytest.mark.anyio
async def test_unknown_route_is_a_json_404(client: httpx.AsyncClient) -> None:
    """A path the API does not have answers 404 with a Wix-shaped body."""
    response = await client.get("/loyalty-accounts/v2/nothing")
    assert response.status_code == 404
    assert response.json()["message"]
