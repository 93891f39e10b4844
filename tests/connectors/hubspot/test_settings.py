"""The `hubspot` connector's settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import connectors
from connectors.base import Capabilities
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.settings import HubSpotSettings
from syncd.errors import ConfigError
from syncd.settings import ConnectorSettings, Settings, describe_error


def test_defaults_and_secrets() -> None:
    """Only name, type and access_token are needed; token and secret stay secret."""
    settings = HubSpotSettings.model_validate(
        {"name": "crm", "type": "hubspot", "access_token": "pat-s3cr3t", "client_secret": "cs-x1"}
    )
    assert settings.base_url == "https://api.hubapi.com"
    assert (settings.points_property, settings.operation_property) == (
        "wix_loyalty_points",
        "syncd_last_operation",
    )
    assert settings.create_properties is True and settings.webhook_url is None
    assert (settings.requests_per_minute, settings.search_requests_per_second) == (600, 4)
    assert settings.timeout_seconds == 10.0
    assert "s3cr3t" not in repr(settings) and "cs-x1" not in repr(settings)


def test_generic_table_becomes_hubspot_settings() -> None:
    """A generic [[connectors]] table (base_url dumped as None) validates as HubSpotSettings."""
    table = ConnectorSettings.model_validate(
        {"name": "crm", "type": "hubspot", "access_token": "tok", "points_property": "pts"}
    )
    connector = HubSpotConnector(table)
    assert isinstance(connector.settings, HubSpotSettings) and connector.name == "crm"
    assert connector.settings.base_url == "https://api.hubapi.com"
    assert connector.points == "pts"


@pytest.mark.parametrize(
    ("bad", "line"),
    [
        ({"access_token": " "}, "access_token: is empty: set the HubSpot private app's"),
        ({"access_token": None}, "access_token: Input should be a valid string"),
        ({"client_secret": ""}, "client_secret: is empty: set the app's client secret"),
        ({"base_url": "api.hubapi.com"}, "base_url: must be an http(s) URL such as"),
        ({"webhook_url": "hooks/crm"}, "webhook_url: must be the http(s) target URL registered"),
        ({"points_property": "Points"}, "points_property: 'Points' is not a HubSpot internal"),
        ({"operation_property": "1op"}, "operation_property: '1op' is not a HubSpot internal"),
        (
            {"operation_property": "wix_loyalty_points"},
            "operation_property: must differ from points_property",
        ),
        ({"requests_per_minute": 0}, "requests_per_minute: Input should be greater than"),
        ({"search_requests_per_second": 0}, "search_requests_per_second: Input should be"),
        ({"timeout_seconds": 0}, "timeout_seconds: Input should be greater than 0"),
        ({"unknown_key": 1}, "unknown_key: unknown key: check the spelling"),
        ({"type": "square"}, "type: 'square' is not allowed; allowed: 'hubspot'"),
    ],
)
def test_bad_values_are_refused_in_one_line(bad: dict[str, object], line: str) -> None:
    """Each bad key is one line naming the key, what is wrong and what to do."""
    values = {"name": "crm", "type": "hubspot", "access_token": "tok"} | bad
    with pytest.raises(ValidationError) as refused:
        HubSpotSettings.model_validate(values)
    lines = [describe_error(e) for e in refused.value.errors()]
    assert any(text.startswith(line) for text in lines), lines
    assert all("\n" not in text for text in lines)


def test_missing_token_in_a_config_file() -> None:
    """Through the registry: a table without access_token is one ConfigError line."""
    settings = Settings.model_validate(
        {
            "wix": {"api_key": "k", "site_id": "s"},
            "connectors": [{"name": "crm", "type": "hubspot"}],
        }
    )
    with pytest.raises(ConfigError) as refused:
        connectors.typed_settings(settings)
    assert refused.value.problems == ["connectors[0].access_token: required key is missing"]


def test_capabilities() -> None:
    """Absolute writes without keys, webhooks, a change feed, email/phone, creation."""
    assert HubSpotConnector.capabilities == Capabilities(
        delta_writes=False,
        idempotency_keys=False,
        webhooks=True,
        change_feed=True,
        find_by=frozenset({"email", "phone"}),
        create_accounts=True,
    )
    assert HubSpotConnector.settings_model is HubSpotSettings


def test_registered_as_entry_point() -> None:
    """The `hubspot` type is found through the `syncd.connectors` entry point."""
    types = connectors.connector_types()
    if "hubspot" not in types:
        pytest.skip("installed metadata predates the entry point: run `pip install -e .`")
    assert types["hubspot"] is HubSpotConnector
