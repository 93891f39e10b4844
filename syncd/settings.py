"""Typed configuration: a TOML file, overridden key by key by `SYNCD_*` environment variables.

The file is named by `--config PATH` or `SYNCD_CONFIG`. Nested keys use `__` in the environment
(`SYNCD_WIX__API_KEY` overrides `[wix] api_key`). Every secret may instead be read from a file
named by the same key with `_file` appended (`api_key_file = "/run/secrets/wix_api_key"`), which
is how container secrets are mounted; relative paths are taken from the config file's folder.

`load_settings` is the only entry point; it raises `ConfigError` with one line per problem.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from syncd.errors import ConfigError
from syncd.keys import load_public_key

CONFIG_ENV = "SYNCD_CONFIG"
CONNECTORS_ENV = "SYNCD_CONNECTORS"
_SECRET_NAME = re.compile(r"(token|secret|password|api_key|signature_key)$")
_ENVIRON: ContextVar[Mapping[str, str]] = ContextVar("syncd_environ")


class _GivenEnvSource(EnvSettingsSource):
    """The environment source, reading the mapping handed to `load_settings`."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        given = _ENVIRON.get(os.environ)
        # `*_FILE` variables name secret files (`_env_secret_files` reads them) and
        # SYNCD_CONNECTORS is parsed by `_env_connectors`, which resolves their `*_file` keys.
        plain = {
            k: v
            for k, v in given.items()
            if not k.upper().endswith("_FILE") and k.upper() != CONNECTORS_ENV
        }
        return parse_env_vars(plain, self.case_sensitive)

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        """A whole section in one variable (`SYNCD_SYNC='{"workers": 8}'`) must be JSON."""
        try:
            return super().decode_complex_value(field_name, field, value)
        except (ValueError, RecursionError):
            name = f"SYNCD_{field_name.upper()}"
            raise ConfigError(
                f"{name}: not a JSON object: set one key at a time instead ({name}__KEY=value)"
            ) from None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class DatabaseSettings(_Section):
    url: str = "sqlite:///syncd.db"


class WixSettings(_Section):
    base_url: str = "https://www.wixapis.com"
    site_id: str | None = None
    api_key: SecretStr | None = None
    app_id: str | None = None
    app_secret: SecretStr | None = None
    instance_id: str | None = None
    webhook_public_key: str | None = None
    webhook_public_key_file: Path | None = None
    requests_per_minute: Annotated[int, Field(ge=1, le=100_000)] = 200
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL such as https://www.wixapis.com")
        return value.rstrip("/")

    @field_validator("webhook_public_key")
    @classmethod
    def _rsa_key(cls, value: str | None) -> str | None:
        if value is not None:
            load_public_key(value)  # its ValueError says what is wrong
        return value

    @model_validator(mode="after")
    def _credentials(self) -> WixSettings:
        oauth = (self.app_id, self.app_secret, self.instance_id)
        if self.api_key is None and not all(oauth):
            if any(oauth):
                names = ("app_id", "app_secret", "instance_id")
                missing = [n for n, v in zip(names, oauth, strict=True) if not v]
                raise ValueError(
                    f"OAuth needs app_id, app_secret and instance_id; missing {', '.join(missing)}"
                )
            raise ValueError(
                "no credentials: set api_key (or api_key_file, or SYNCD_WIX__API_KEY) with "
                "site_id, or app_id, app_secret and instance_id for OAuth"
            )
        if self.api_key is not None and not self.site_id:
            raise ValueError("api_key needs site_id (the site's id, sent as wix-site-id)")
        return self

    @property
    def uses_oauth(self) -> bool:
        return self.api_key is None


ConflictPolicy = Literal["merge", "wix_wins", "external_wins", "manual"]
InitialPolicy = Literal["wix", "external", "max", "sum", "manual"]
NegativePolicy = Literal["clamp", "hold"]


class SyncSettings(_Section):
    conflict_policy: ConflictPolicy = "merge"
    initial_policy: InitialPolicy = "external"
    negative_policy: NegativePolicy = "clamp"
    max_auto_delta: Annotated[int, Field(ge=1)] = 100_000
    max_changed_fraction: Annotated[float, Field(gt=0, le=1)] = 0.5
    poll_interval_seconds: Annotated[int, Field(ge=1, le=86_400)] = 30
    drift_check_cron: str = "0 3 * * *"
    """When the daemon re-checks every link for drift (crontab: minute hour day month weekday;
    "" turns it off)."""
    workers: Annotated[int, Field(ge=1, le=64)] = 4

    @field_validator("drift_check_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if value and len(value.split()) != 5:
            raise ValueError('needs five fields: minute hour day month weekday (or "" for off)')
        return value


class ServerSettings(_Section):
    host: str = "0.0.0.0"
    port: Annotated[int, Field(ge=1, le=65_535)] = 8080


MatchKey = Literal["email", "phone"]
DEFAULT_MATCH_ON: tuple[MatchKey, ...] = ("email", "phone")


class ConnectorSettings(BaseModel):
    """The keys every connector has; each connector type adds its own (checked by that type)."""

    model_config = ConfigDict(extra="allow")

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
    type: Annotated[str, Field(min_length=1)]
    base_url: str | None = None
    match_on: list[MatchKey] = Field(default_factory=lambda: list(DEFAULT_MATCH_ON))
    create_missing: Literal["none", "wix", "external", "both"] = "none"
    direction: Literal["both", "to_wix", "from_wix"] = "both"


class Settings(BaseSettings):
    """The whole configuration of one syncd deployment."""

    model_config = SettingsConfigDict(
        env_prefix="SYNCD_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    wix: WixSettings
    sync: SyncSettings = Field(default_factory=SyncSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    connectors: list[ConnectorSettings] = Field(default_factory=list)

    @field_validator("connectors")
    @classmethod
    def _unique_names(cls, value: list[ConnectorSettings]) -> list[ConnectorSettings]:
        names = [c.name for c in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"connector names must be unique; repeated: {', '.join(dupes)}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init arguments; the environment overrides them.
        return (_GivenEnvSource(settings_cls), init_settings)


def load_settings(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Settings:
    """Read the config file (`path`, else `$SYNCD_CONFIG`), apply the environment, validate.

    `defaults` are values under the file (the sandbox uses them for its embedded config).
    Raises ConfigError listing every problem, one line each.
    """
    try:
        return _load_settings(path, environ, defaults)
    except ConfigError as error:  # a key or path may hold a line break: keep one line each
        raise ConfigError([_one_line(p) for p in error.problems]) from None
    except RecursionError:
        raise ConfigError(
            "config: tables or lists nested too deeply to read: flatten the file"
        ) from None


def _load_settings(
    path: str | Path | None, environ: Mapping[str, str] | None, defaults: Mapping[str, Any] | None
) -> Settings:
    env = os.environ if environ is None else environ
    if path is None and env.get(CONFIG_ENV):
        path = env[CONFIG_ENV]
    data: dict[str, Any] = dict(defaults or {})
    base_dir = Path.cwd()
    if path is not None:
        file = Path(path)
        data = _deep_merge(data, _read_toml(file))
        base_dir = file.parent
    data = _resolve_secret_files(data, base_dir)
    if env.get(CONNECTORS_ENV):
        data["connectors"] = _resolve_secret_files(
            {"connectors": _env_connectors(env[CONNECTORS_ENV])}, base_dir
        )["connectors"]
    token = _ENVIRON.set(env)
    try:
        return Settings(**_deep_merge(data, _env_secret_files(env, base_dir)))
    except ValidationError as exc:
        raise ConfigError([describe_error(err) for err in exc.errors()]) from None
    finally:
        _ENVIRON.reset(token)


def masked(settings: Settings) -> dict[str, Any]:
    """The settings as plain data with every secret replaced by '********'."""
    dumped: dict[str, Any] = _mask(settings.model_dump(mode="python", exclude_none=True))
    return dumped


def _env_connectors(text: str) -> list[Any]:
    """SYNCD_CONNECTORS: the `[[connectors]]` tables as a JSON list (replacing the file's)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{CONNECTORS_ENV}: not valid JSON ({exc.msg} at character {exc.pos}): give a JSON "
            'list such as [{"name": "shop", "type": "square", "access_token_file": "..."}]'
        ) from None
    except (ValueError, RecursionError):  # a number too long, or nesting too deep, to read
        raise ConfigError(
            f"{CONNECTORS_ENV}: JSON nested too deeply or a number too long"
        ) from None
    if not isinstance(value, list):
        raise ConfigError(f"{CONNECTORS_ENV}: must be a JSON list of connector tables")
    return value


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            f"{file}: config file not found: check --config or {CONFIG_ENV}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{file}: not UTF-8 text (byte {exc.start}): save the file as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}: fix the syntax") from None
    except ValueError as exc:  # not wrapped by tomllib: an integer of over 4300 digits
        reason = str(exc).split(";")[0]
        raise ConfigError(f"{file}: invalid TOML: {reason}: fix the value") from None


def _resolve_secret_files(data: dict[str, Any], base_dir: Path, where: str = "") -> dict[str, Any]:
    """Replace every `<key>_file` entry by `<key>` holding the file's stripped contents."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{where}{key}"
        if isinstance(value, dict):
            out[key] = _resolve_secret_files(value, base_dir, f"{dotted}.")
        elif isinstance(value, list):
            out[key] = [
                _resolve_secret_files(item, base_dir, f"{dotted}[{i}].")
                if isinstance(item, dict)
                else item
                for i, item in enumerate(value)
            ]
        elif key.endswith("_file") and key != "webhook_public_key_file":
            out[key.removesuffix("_file")] = _read_secret(dotted, value, base_dir)
        elif key == "webhook_public_key_file":
            out["webhook_public_key"] = _read_secret(dotted, value, base_dir)
            out[key] = value
        else:
            out[key] = value
    return out


def _env_secret_files(env: Mapping[str, str], base_dir: Path) -> dict[str, Any]:
    """`SYNCD_WIX__API_KEY_FILE=/run/secrets/x` becomes the nested value `wix.api_key`."""
    nested: dict[str, Any] = {}
    for name, value in env.items():
        if not (name.startswith("SYNCD_") and name.endswith("_FILE")) or name == CONFIG_ENV:
            continue
        parts = name.removeprefix("SYNCD_").lower().split("__")
        if len(parts) < 2:
            continue
        *sections, key = parts
        node = nested
        for depth, section in enumerate(sections, 1):
            node = node.setdefault(section, {})
            if not isinstance(node, dict):
                taken = ".".join(sections[:depth])
                raise ConfigError(f"{name}: {taken} is already set by another *_FILE variable")
        secret = _read_secret(".".join(parts), value, base_dir)
        node["webhook_public_key" if key == "webhook_public_key_file" else key[: -len("_file")]] = (
            secret
        )
    return nested


def _read_secret(key: str, value: object, base_dir: Path) -> str:
    if not isinstance(value, str | os.PathLike):
        raise ConfigError(f"{key}: must be a file path, got {type(value).__name__}")
    file = base_dir / Path(value)
    try:
        return file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"{key}: cannot read {file} ({exc.strerror}): mount the secret or fix the path"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{key}: {file} is not UTF-8 text (byte {exc.start}): write the secret as text"
        ) from None
    except ValueError:  # the path holds a NUL character
        raise ConfigError(f"{key}: {_short(str(value))} is not a usable file path") from None


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _one_line(text: str) -> str:
    """`text` with line breaks and other unprintable characters escaped (`\\n`)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def describe_error(err: Mapping[str, Any]) -> str:
    """One line for one validation error: key, what is wrong, what is allowed."""
    return _one_line(_describe(err))  # keys and messages may hold line breaks


def _describe(err: Mapping[str, Any]) -> str:
    key = ".".join(str(p) for p in err["loc"]) or "config"
    key = re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", key)
    kind = err["type"]
    got = err.get("input")
    if kind == "missing" and key == "wix":
        return "wix: section is missing: add [wix] with site_id and api_key (see README)"
    if kind == "missing":
        return f"{key}: required key is missing"
    if kind == "extra_forbidden":
        return f"{key}: unknown key: check the spelling against config/syncd.example.toml"
    if kind == "literal_error":
        allowed = err.get("ctx", {}).get("expected", "")
        return f"{key}: {_short(got)} is not allowed; allowed: {allowed.replace(' or ', ', ')}"
    message = str(err["msg"]).removeprefix("Value error, ")
    name = key.rsplit(".", 1)[-1]
    if _SECRET_NAME.search(name) or name.endswith("public_key"):  # a wrong key file may hold
        return f"{key}: {message}"  # a private key or another secret: never quote it
    return f"{key}: {message} (got {_short(got)})" if got is not None else f"{key}: {message}"


def _short(value: object) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        return f"a list of {len(value)} entries"  # tables hold secrets: never quote them
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def mask_url(url: str) -> str:
    """A URL with any password replaced by '***' (database URLs carry one): after the user
    name, or as a `password=` / `sslpassword=` query parameter (libpq takes both there)."""
    url = re.sub(r"(://[^:/@]+:)[^@/]+@", r"\1***@", url)
    return re.sub(r"([?&](?:ssl)?password=)[^&#]*", r"\1***", url, flags=re.IGNORECASE)


def _mask(value: Any, key: str = "") -> Any:
    if key == "url" and isinstance(value, str):
        return mask_url(value)
    if isinstance(value, dict):
        return {k: _mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, key) for v in value]
    if isinstance(value, SecretStr) or (_SECRET_NAME.search(key) and value):
        return "********"
    return value
