"""A bad or unreachable `database.url` is one ConfigError line that never shows the password."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from syncd.errors import ConfigError
from syncd.store.db import check_connection, make_engine, upgrade

PASSWORD = "s3cret-Pa55"


def _assert_one_safe_line(error: ConfigError) -> str:
    """The message is a single line starting with the key and hides the password."""
    message = str(error)
    assert "\n" not in message
    assert PASSWORD not in message
    assert message.startswith("database.url: ")
    return message


@pytest.mark.parametrize("action", [check_connection, upgrade], ids=["check", "upgrade"])
def test_unreachable_postgres_is_a_config_error(action: Callable[[Engine], None]) -> None:
    """Nothing listening on the port: ConfigError naming the server and what to check."""
    engine = make_engine(f"postgresql://root:{PASSWORD}@127.0.0.1:1/test")
    try:
        with pytest.raises(ConfigError) as caught:
            action(engine)
    finally:
        engine.dispose()

    message = _assert_one_safe_line(caught.value)
    assert "cannot connect to postgresql://root:***@127.0.0.1:1/test" in message
    assert "connection refused" in message
    assert "check the server is running" in message


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://root:{PASSWORD}@127.0.0.1:notaport/test",
        "not a url",
        "",
        f"mysql://root:{PASSWORD}@127.0.0.1/test",
    ],
    ids=["bad-port", "no-scheme", "empty", "unsupported-database"],
)
def test_malformed_url_is_a_config_error(url: str) -> None:
    """A URL that cannot name a SQLite or PostgreSQL database is refused before connecting."""
    with pytest.raises(ConfigError) as caught:
        make_engine(url)

    message = _assert_one_safe_line(caught.value)
    assert "sqlite:///" in message  # says what a good URL looks like


def test_sqlite_in_a_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    """A SQLite file that cannot be opened is a ConfigError naming the file."""
    path = tmp_path / "missing" / "syncd.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with pytest.raises(ConfigError) as caught:
            upgrade(engine)
    finally:
        engine.dispose()

    message = _assert_one_safe_line(caught.value)
    assert str(path) in message
    assert "unable to open database file" in message
