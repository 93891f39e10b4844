"""Settings: the TOML file, environment overrides, secret files, one clear line per problem."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import connectors
from syncd.errors import ConfigError
from syncd.settings import load_settings, masked

GOOD = """
[database]
url = "sqlite:///syncd.db"
[wix]
site_id = "site-1"
api_key = "key-in-file"
[sync]
conflict_policy = "merge"
[[connectors]]
name = "shop"
type = "square"
access_token = "square-token"
"""


def write(tmp_path: Path, text: str, name: str = "syncd.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(path: Path | None, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=environ or {})
    return caught.value.problems


def test_file_values_and_defaults(tmp_path: Path) -> None:
    """Keys in the file are read; keys left out take the documented defaults."""
    settings = load_settings(write(tmp_path, GOOD), environ={})
    assert settings.wix.site_id == "site-1"
    assert settings.wix.api_key is not None
    assert settings.wix.api_key.get_secret_value() == "key-in-file"
    assert settings.wix.requests_per_minute == 200
    assert settings.sync.negative_policy == "clamp"
    assert settings.server.port == 8080
    assert settings.connectors[0].match_on == ["email", "phone"]


def test_environment_overrides_single_nested_keys(tmp_path: Path) -> None:
    """SYNCD_WIX__API_KEY replaces only wix.api_key; the rest of [wix] still comes from the file."""
    env = {"SYNCD_WIX__API_KEY": "key-from-env", "SYNCD_SYNC__CONFLICT_POLICY": "manual"}
    settings = load_settings(write(tmp_path, GOOD), environ=env)
    assert settings.wix.api_key is not None
    assert settings.wix.api_key.get_secret_value() == "key-from-env"
    assert settings.wix.site_id == "site-1"
    assert settings.sync.conflict_policy == "manual"


def test_config_path_from_environment(tmp_path: Path) -> None:
    """SYNCD_CONFIG names the file when --config is not given."""
    path = write(tmp_path, GOOD)
    settings = load_settings(None, environ={"SYNCD_CONFIG": str(path)})
    assert settings.wix.site_id == "site-1"


def test_secret_files_relative_to_config(tmp_path: Path) -> None:
    """`api_key_file` is read (stripped) relative to the config file's folder."""
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "wix").write_text("mounted-key\n")
    text = GOOD.replace('api_key = "key-in-file"', 'api_key_file = "secrets/wix"')
    settings = load_settings(write(tmp_path, text), environ={})
    assert settings.wix.api_key is not None
    assert settings.wix.api_key.get_secret_value() == "mounted-key"


def test_secret_file_from_environment(tmp_path: Path) -> None:
    """SYNCD_WIX__API_KEY_FILE points at a mounted secret and overrides the file's key."""
    secret = tmp_path / "k"
    secret.write_text("env-mounted")
    env = {"SYNCD_WIX__API_KEY_FILE": str(secret)}
    settings = load_settings(write(tmp_path, GOOD), environ=env)
    assert settings.wix.api_key is not None
    assert settings.wix.api_key.get_secret_value() == "env-mounted"


def test_every_problem_is_one_line(tmp_path: Path) -> None:
    """A bad file reports each problem on its own line: key, what is wrong, what is allowed."""
    text = GOOD.replace('"merge"', '"mrege"') + "[server]\nport = 99999\nprot = 1\n"
    found = problems(write(tmp_path, text))
    assert len(found) == 3
    assert any(
        line.startswith("sync.conflict_policy: 'mrege' is not allowed; allowed:")
        and "external_wins" in line
        for line in found
    )
    assert any(line.startswith("server.port:") and "65535" in line for line in found)
    assert any(line.startswith("server.prot: unknown key") for line in found)
    assert all("\n" not in line for line in found)


def test_missing_secret(tmp_path: Path) -> None:
    """No Wix credentials at all is one line naming the keys to set."""
    text = GOOD.replace('api_key = "key-in-file"\n', "")
    [line] = problems(write(tmp_path, text))
    assert line.startswith("wix: no credentials: set api_key")


def test_partial_oauth_names_what_is_missing(tmp_path: Path) -> None:
    """OAuth with app_id alone says which of its keys are missing."""
    text = GOOD.replace('api_key = "key-in-file"', 'app_id = "app"')
    [line] = problems(write(tmp_path, text))
    assert "missing app_secret, instance_id" in line


def test_unreadable_secret_file(tmp_path: Path) -> None:
    """A *_file that cannot be read names the key and the path."""
    text = GOOD.replace('api_key = "key-in-file"', 'api_key_file = "absent"')
    [line] = problems(write(tmp_path, text))
    assert line.startswith("wix.api_key_file: cannot read") and "absent" in line


def test_invalid_toml(tmp_path: Path) -> None:
    """A syntax error in the file is one line with the file name."""
    [line] = problems(write(tmp_path, "[wix\nsite_id = 1"))
    assert "invalid TOML" in line and "syncd.toml" in line


def test_missing_file(tmp_path: Path) -> None:
    """A config path that does not exist says so."""
    [line] = problems(tmp_path / "nope.toml")
    assert "config file not found" in line


def test_duplicate_connector_names(tmp_path: Path) -> None:
    """Two connectors may not share a name (it is their webhook path and their link key)."""
    text = GOOD + '[[connectors]]\nname = "shop"\ntype = "hubspot"\n'
    [line] = problems(write(tmp_path, text))
    assert line.startswith("connectors: ") and "shop" in line


def test_masked_hides_every_secret(tmp_path: Path) -> None:
    """`masked` replaces Wix and connector secrets alike."""
    dumped = repr(masked(load_settings(write(tmp_path, GOOD), environ={})))
    assert "key-in-file" not in dumped
    assert "square-token" not in dumped
    assert dumped.count("********") == 2


def test_secret_values_never_in_errors(tmp_path: Path) -> None:
    """A validation error on a secret key does not echo the secret."""
    text = GOOD.replace('api_key = "key-in-file"', "api_key = 12345678")
    found = problems(write(tmp_path, text))
    assert not any("12345678" in line for line in found)


def test_connectors_from_the_environment_with_secret_files(tmp_path: Path) -> None:
    """SYNCD_CONNECTORS (JSON) replaces the file's connectors; its *_file keys are read."""
    token = tmp_path / "square_token"
    token.write_text("from-a-mounted-file\n")
    tables = f'[{{"name": "till", "type": "square", "access_token_file": "{token}"}}]'
    settings = load_settings(write(tmp_path, GOOD), environ={"SYNCD_CONNECTORS": tables})
    [connector] = settings.connectors
    assert connector.name == "till"
    assert connector.model_dump()["access_token"] == "from-a-mounted-file"


def test_connectors_environment_must_be_json(tmp_path: Path) -> None:
    """Malformed SYNCD_CONNECTORS is one line saying what to give."""
    [line] = problems(write(tmp_path, GOOD), {"SYNCD_CONNECTORS": "[{name: shop}]"})
    assert line.startswith("SYNCD_CONNECTORS: not valid JSON")


def test_the_example_config_is_valid(tmp_path: Path) -> None:
    """config/syncd.example.toml loads, and every connector table in it passes its type's own
    checks, once the secret files it names exist."""
    example = Path(__file__).parent.parent / "config" / "syncd.example.toml"
    config = tmp_path / "syncd.toml"
    shutil.copy(example, config)
    for name in re.findall(r'^\w+_file = "([^"]+)"', example.read_text(), re.M):
        secret = tmp_path / name
        secret.parent.mkdir(exist_ok=True)
        secret.write_text("sqlite:///pos.db" if "database_url" in name else "a-secret\n")
    public_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    (tmp_path / "wix.pem").write_bytes(
        public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    settings = load_settings(config, environ={})
    typed = connectors.typed_settings(settings)
    assert [(t.name, t.type) for t in typed] == [
        ("shop", "square"),
        ("crm", "hubspot"),
        ("till", "sql"),
    ]
