"""Config keys of a `type = "hubspot"` connector table.

    [[connectors]]
    name = "crm"
    type = "hubspot"
    access_token_file = "secrets/hubspot_token"     # a private app's token (or OAuth access token)
    client_secret_file = "secrets/hubspot_secret"   # the app's client secret: signs webhooks
    webhook_url = "https://syncd.example.com/webhooks/crm"   # exactly as registered at HubSpot
    points_property = "wix_loyalty_points"          # a number property of contacts

The token needs the scopes `crm.objects.contacts.read` and `crm.objects.contacts.write`, plus
`crm.schemas.contacts.read` (and `.write` when syncd may create its two properties).
`requests_per_minute` defaults to 600, HubSpot's 100 requests per 10 seconds of the Free and
Starter tiers (Professional and Enterprise allow 190); search has its own limit of 4 a second.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from syncd.settings import ConnectorSettings

PRODUCTION_URL = "https://api.hubapi.com"
DEFAULT_POINTS_PROPERTY = "wix_loyalty_points"
DEFAULT_OPERATION_PROPERTY = "syncd_last_operation"
DEFAULT_REQUESTS_PER_MINUTE = 600
DEFAULT_SEARCH_REQUESTS_PER_SECOND = 4
_INTERNAL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
_HTTP_URL = re.compile(r"^https?://[^/\s]+")


class HubSpotSettings(ConnectorSettings):
    """One HubSpot account's contacts, reached with a private app's access token."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["hubspot"]
    base_url: str = PRODUCTION_URL
    access_token: SecretStr
    client_secret: SecretStr | None = None
    """The app's client secret, the key of webhook signatures (v3)."""
    webhook_url: str | None = None
    """The target URL exactly as registered at HubSpot: it is part of the signed message."""
    points_property: str = DEFAULT_POINTS_PROPERTY
    operation_property: str = DEFAULT_OPERATION_PROPERTY
    """Holds `<operation id>:<value>` of syncd's last write; its history proves each write."""
    create_properties: bool = True
    """Create the two properties when they are missing (needs crm.schemas.contacts.write)."""
    requests_per_minute: Annotated[int, Field(ge=1, le=100_000)] = DEFAULT_REQUESTS_PER_MINUTE
    search_requests_per_second: Annotated[int, Field(ge=1, le=1_000)] = (
        DEFAULT_SEARCH_REQUESTS_PER_SECOND
    )
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0

    @field_validator("base_url", mode="before")
    @classmethod
    def _default_base_url(cls, value: Any) -> Any:
        # The generic connector table dumps an unset base_url as None.
        return PRODUCTION_URL if value is None else value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not _HTTP_URL.match(value):
            raise ValueError(f"must be an http(s) URL such as {PRODUCTION_URL}")
        return value.rstrip("/")

    @field_validator("access_token")
    @classmethod
    def _token_given(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("is empty: set the HubSpot private app's access token")
        return value

    @field_validator("client_secret")
    @classmethod
    def _secret_given(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("is empty: set the app's client secret, or leave the key out")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is not None and not _HTTP_URL.match(value):
            raise ValueError("must be the http(s) target URL registered at HubSpot")
        return value

    @field_validator("points_property", "operation_property")
    @classmethod
    def _internal_name(cls, value: str) -> str:
        if not _INTERNAL_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a HubSpot internal property name: use lower-case letters, "
                "digits and underscores, starting with a letter"
            )
        return value

    @field_validator("operation_property")
    @classmethod
    def _not_the_points(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("points_property"):
            raise ValueError("must differ from points_property: syncd needs two properties")
        return value
