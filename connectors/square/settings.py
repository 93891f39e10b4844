"""Config keys of a `type = "square"` connector table.

    [[connectors]]
    name = "pos"
    type = "square"
    access_token_file = "secrets/square_token"       # or access_token / SYNCD_..._ACCESS_TOKEN
    webhook_signature_key_file = "secrets/square_hmac"
    webhook_url = "https://syncd.example.com/webhooks/pos"   # exactly as registered at Square

Square publishes no rate limit, so `requests_per_minute` defaults to 600 (10 a second): far
under what Square's APIs sustain for one seller in practice, and still enough to read 200
accounts (plus their customers) a second during a backfill. Raise it if Square allows more.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator

from syncd.settings import ConnectorSettings

PRODUCTION_URL = "https://connect.squareup.com"
SANDBOX_URL = "https://connect.squareupsandbox.com"
DEFAULT_SQUARE_VERSION = "2025-08-20"
DEFAULT_REQUESTS_PER_MINUTE = 600


class SquareSettings(ConnectorSettings):
    """One Square seller's Loyalty program, reached with an access token."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["square"]
    base_url: str = PRODUCTION_URL
    access_token: SecretStr
    webhook_signature_key: SecretStr | None = None
    webhook_url: str | None = None
    """The notification URL exactly as registered at Square: it is part of the signed message."""
    square_version: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")] = DEFAULT_SQUARE_VERSION
    requests_per_minute: Annotated[int, Field(ge=1, le=100_000)] = DEFAULT_REQUESTS_PER_MINUTE
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0

    @field_validator("base_url", mode="before")
    @classmethod
    def _default_base_url(cls, value: Any) -> Any:
        # The generic connector table dumps an unset base_url as None.
        return PRODUCTION_URL if value is None else value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"must be an http(s) URL such as {PRODUCTION_URL}")
        return value.rstrip("/")

    @field_validator("access_token")
    @classmethod
    def _token_given(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("is empty: set the seller's Square access token")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be the http(s) notification URL registered at Square")
        return value
