"""The `square` connector's settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import connectors
from connectors.base import Capabilities
from connectors.square.connector import SquareConnector
from connectors.square.settings import SquareSettings
from syncd.settings import ConnectorSettings


def test_defaults_and_secrets() -> None:
    """Only name, type and access_token are needed; the token stays secret."""
    settings = SquareSettings.model_validate(
        {"name": "pos", "type": "square", "access_token": "s3cr3t-token"}
    )
    assert settings.base_url == "https://connect.squareup.com"
    assert settings.square_version == "2025-08-20"
    assert (settings.requests_per_minute, settings.timeout_seconds) == (600, 10.0)
    assert settings.webhook_signature_key is None and settings.webhook_url is None
    assert settings.match_on == ["email", "phone"] and settings.direction == "both"
    assert "s3cr3t" not in repr(settings)


def test_generic_table_becomes_square_settings() -> None:
    """A generic [[connectors]] table (base_url dumped as None) validates as SquareSettings."""
    table = ConnectorSettings.model_validate(
        {"name": "pos", "type": "square", "access_token": "tok", "webhook_url": "https://x.test/h"}
    )
    settings = SquareSettings.model_validate(table.model_dump())
    assert settings.base_url == "https://connect.squareup.com"
    connector = SquareConnector(table)
    assert isinstance(connector.settings, SquareSettings) and connector.name == "pos"


@pytest.mark.parametrize(
    "bad",
    [
        {"access_token": ""},
        {"base_url": "connect.squareup.com"},
        {"square_version": "latest"},
        {"requests_per_minute": 0},
        {"webhook_url": "not a url"},
        {"unknown_key": 1},
        {"type": "hubspot"},
    ],
)
def test_bad_values_are_refused(bad: dict[str, object]) -> None:
    """Empty token, bad URLs or version, zero budget, unknown keys, another type."""
    values = {"name": "pos", "type": "square", "access_token": "tok"} | bad
    with pytest.raises(ValidationError):
        SquareSettings.model_validate(values)


def test_capabilities() -> None:
    """Delta writes with keys, webhooks, a change feed, email/phone matching, creation."""
    assert SquareConnector.capabilities == Capabilities(
        delta_writes=True,
        idempotency_keys=True,
        webhooks=True,
        change_feed=True,
        find_by=frozenset({"email", "phone"}),
        create_accounts=True,
    )
    assert SquareConnector.settings_model is SquareSettings


def test_registered_as_entry_point() -> None:
    """The `square` type is found through the `syncd.connectors` entry point."""
    types = connectors.connector_types()
    if "square" not in types:
        pytest.skip("installed metadata predates the entry point: run `pip install -e .`")
    assert types["square"] is SquareConnector
