"""Who may call: an API key with `wix-site-id`, or an OAuth app access token.

Authorization missing, or an unknown/expired token   -> 401
the API key without `wix-site-id` (or another site)  -> 403
POST /oauth2/token client_credentials                -> {"access_token", "token_type":
                                                         "Bearer", "expires_in"}
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from syncd.sandbox.wix.errors import WixApiError, invalid
from syncd.sandbox.wix.wire import Clock


@dataclass(frozen=True)
class Credentials:
    """What the emulated site and its app accept."""

    site_id: str
    api_key: str
    app_id: str
    app_secret: str
    instance_id: str


class Gatekeeper:
    """Checks credentials and issues access tokens (which expire on the emulator's clock)."""

    def __init__(self, credentials: Credentials, clock: Clock) -> None:
        self.credentials = credentials
        self.clock = clock
        self.tokens: dict[str, datetime] = {}

    def authenticate(self, authorization: str | None, site_header: str | None) -> str:
        """The site id a request acts on; raises 401/403 as Wix would."""
        creds = self.credentials
        if not authorization:
            raise WixApiError(401, "Missing Authorization header", code="UNAUTHENTICATED")
        if secrets.compare_digest(authorization.encode(), creds.api_key.encode()):
            if not site_header:
                raise WixApiError(
                    403, "API key calls need the wix-site-id header", code="PERMISSION_DENIED"
                )
            if site_header != creds.site_id:
                raise WixApiError(
                    403, "API key has no access to this site", code="PERMISSION_DENIED"
                )
            return creds.site_id
        expires = self.tokens.get(authorization)
        if expires is None:
            raise WixApiError(401, "Unknown access token or API key", code="UNAUTHENTICATED")
        if self.clock() >= expires:
            raise WixApiError(401, "Access token expired", code="UNAUTHENTICATED")
        return creds.site_id

    def issue_token(self, request: Any, ttl_seconds: int) -> dict[str, Any]:
        """Answer POST /oauth2/token for the client_credentials grant."""
        if not isinstance(request, dict):
            raise invalid("grant_type", "is required", "REQUIRED_FIELD")
        if request.get("grant_type") != "client_credentials":
            raise invalid("grant_type", "only client_credentials is supported")
        creds = self.credentials
        if (
            request.get("client_id") != creds.app_id
            or request.get("client_secret") != creds.app_secret
        ):
            raise WixApiError(401, "Invalid client_id or client_secret", code="INVALID_CLIENT")
        if request.get("instance_id") != creds.instance_id:
            raise WixApiError(401, "App is not installed on this instance", code="INVALID_INSTANCE")
        token = f"OAUTH2.{secrets.token_urlsafe(32)}"
        self.tokens[token] = self.clock() + timedelta(seconds=ttl_seconds)
        return {"access_token": token, "token_type": "Bearer", "expires_in": ttl_seconds}

    def reset(self) -> None:
        """Revoke every issued token."""
        self.tokens.clear()
