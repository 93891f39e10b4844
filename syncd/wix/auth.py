"""Wix authentication as httpx auth flows: a site API key, or an OAuth app's access token.

API key: `Authorization: <key>` (no "Bearer") and `wix-site-id: <site id>`.
OAuth app: `POST /oauth2/token` with client credentials and the app instance id returns a token
valid for `expires_in` seconds; it is sent as `Authorization: <token>`, fetched again a minute
before it expires, and once more if the site answers 401.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator

import httpx

from syncd.errors import FatalError, RetriableError
from syncd.settings import WixSettings

TOKEN_PATH = "/oauth2/token"
REFRESH_MARGIN_SECONDS = 60.0


class ApiKeyAuth(httpx.Auth):
    """A site-level API key with the site id it belongs to."""

    def __init__(self, api_key: str, site_id: str) -> None:
        self._api_key = api_key
        self._site_id = site_id

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._api_key
        request.headers["wix-site-id"] = self._site_id
        yield request


class OAuthAuth(httpx.Auth):
    """An OAuth app's client-credentials token for one app instance (one site), kept fresh."""

    requires_response_body = True

    def __init__(
        self,
        base_url: str,
        app_id: str,
        app_secret: str,
        instance_id: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token_url = base_url.rstrip("/") + TOKEN_PATH
        self._credentials = {
            "grant_type": "client_credentials",
            "client_id": app_id,
            "client_secret": app_secret,
            "instance_id": instance_id,
        }
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self.tokens_fetched = 0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._token is None or self._clock() >= self._expires_at - REFRESH_MARGIN_SECONDS:
            self._store((yield self._token_request()))
        request.headers["Authorization"] = self._token or ""
        response = yield request
        if response.status_code == 401:
            self._store((yield self._token_request()))
            request.headers["Authorization"] = self._token or ""
            yield request

    def _token_request(self) -> httpx.Request:
        return httpx.Request(
            "POST",
            self._token_url,
            content=json.dumps(self._credentials).encode(),
            headers={"content-type": "application/json"},
        )

    def _store(self, response: httpx.Response) -> None:
        if response.status_code >= 500 or response.status_code == 429:
            raise RetriableError(
                "token endpoint unavailable", remote="wix", status=response.status_code
            )
        if not response.is_success:
            raise FatalError(
                "OAuth token refused: check wix.app_id, wix.app_secret and wix.instance_id",
                remote="wix",
                status=response.status_code,
            )
        body = response.json()
        self._token = str(body["access_token"])
        self._expires_at = self._clock() + float(body.get("expires_in", 14_400))
        self.tokens_fetched += 1


def make_auth(settings: WixSettings) -> httpx.Auth:
    """The auth flow the settings ask for (API key wins when both are configured)."""
    if settings.api_key is not None:
        return ApiKeyAuth(settings.api_key.get_secret_value(), settings.site_id or "")
    assert settings.app_id and settings.app_secret and settings.instance_id
    return OAuthAuth(
        settings.base_url,
        settings.app_id,
        settings.app_secret.get_secret_value(),
        settings.instance_id,
    )
