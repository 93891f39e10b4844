"""Fuzzing what reads untrusted or hand-written input: the webhook verifiers and the config loader.

The verifiers must only ever raise `WebhookRejected` or return parsed events; the loader only
ever raises `ConfigError` with one printable line per problem (`key: what is wrong`) or returns
settings, and never quotes a secret. Every run draws the same examples (see conftest.FUZZ).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import currently_in_test_context, event, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from jwt.utils import base64url_encode
from pydantic import SecretStr

import connectors
from connectors.base import ExternalEvent
from connectors.square.connector import SquareConnector
from connectors.square.settings import SquareSettings
from syncd.errors import ConfigError, WebhookRejected
from syncd.settings import load_settings, masked
from syncd.wix.webhooks import CLOCK_SKEW_SECONDS, WixEvent, verify
from tests.hostile.conftest import FUZZ
from tests.runtime.conftest import HOOK_URL, SIGNATURE_KEY, SQUARE_HEADER
from tests.wix.test_webhooks import KEY, NOW, PUBLIC, PUBLIC_PEM, envelope

DEEP = "[" * 5_000 + "]" * 5_000  # valid JSON nested deeper than Python's parser recurses
BIG_INT = 10**400  # too big for a float


def _fuzz(examples: int) -> hypothesis_settings:
    return hypothesis_settings(FUZZ, max_examples=examples)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


# -- Wix ----------------------------------------------------------------------------------------


def _jws(header: bytes, payload: bytes) -> bytes:
    """A compact JWS of any header and payload bytes, RS256-signed with the test site's key."""
    signing_input = base64url_encode(header) + b"." + base64url_encode(payload)
    signature = KEY.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return signing_input + b"." + base64url_encode(signature)


def _note(label: str) -> None:
    """Label this example's outcome in Hypothesis' statistics (when run by Hypothesis)."""
    if currently_in_test_context():
        event(label)


def _wix_outcome(raw: bytes, now: datetime = NOW) -> WixEvent | None:
    """verify's answer: the event, or None when rejected (with a reason). Anything else
    escapes and fails the test."""
    try:
        parsed = verify(raw, PUBLIC, now=now)
    except WebhookRejected as rejected:
        assert rejected.reason
        _note(f"rejected: {rejected.reason.split(':')[0]}")
        return None
    _note("parsed")
    assert isinstance(parsed.event_id, str) and parsed.event_id
    assert isinstance(parsed.event_type, str)
    assert isinstance(parsed.entity, dict)
    return parsed


@_fuzz(300)
@given(st.binary(max_size=4096))
@example(b"")
@example(b"..")
@example(b"\xff" * 10)
def test_wix_verify_on_arbitrary_bytes(raw: bytes) -> None:
    """Arbitrary bytes are rejected with WebhookRejected, never another exception."""
    assert _wix_outcome(raw) is None


headers = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"alg": st.sampled_from(["RS256", "none", "HS256", "RS512", "PS256", "ES256", ""])},
        optional={"typ": json_values, "kid": json_values, "crit": json_values, "b64": json_values},
    ),
)


@_fuzz(150)
@given(
    header=headers.map(lambda h: json.dumps(h).encode()) | st.binary(max_size=64),
    payload=json_values.map(lambda p: json.dumps(p).encode()) | st.binary(max_size=64),
    signature=st.binary(max_size=300),
)
@example(header=DEEP.encode(), payload=b"{}", signature=b"x")
def test_wix_verify_on_unsigned_token_shapes(
    header: bytes, payload: bytes, signature: bytes
) -> None:
    """Three base64url segments with any header, payload and signature (no valid RS256
    signature by the site's key) are always rejected, never anything else."""
    token = b".".join(base64url_encode(part) for part in (header, payload, signature))
    assert _wix_outcome(token) is None


class AsJson(dict[str, Any]):
    """A layer that travels as a JSON string (Wix's `data` claims, *AsJson entities)."""


def _encoded(value: Any) -> Any:
    """`value` as sent: every AsJson layer turned into its JSON string."""
    if isinstance(value, dict):
        plain = {k: _encoded(v) for k, v in value.items()}
        return json.dumps(plain) if isinstance(value, AsJson) else plain
    return value


Changes = dict[tuple[str, ...], st.SearchStrategy[Any]]


@st.composite
def mutated(draw: st.DrawFn, genuine: Any, changes: Changes) -> Any:
    """`genuine()` with up to three of `changes` made: each key deleted or given a drawn value
    (a change under a key already deleted or replaced is skipped)."""
    document = genuine()
    for path in draw(st.lists(st.sampled_from(sorted(changes)), max_size=3, unique=True)):
        parent = document
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue
        if draw(st.booleans()) and path[-1] in parent:
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(changes[path])
    return _encoded(document)


def _genuine_wix() -> dict[str, Any]:
    """The claims of a genuine event (tests/wix), its layers decoded."""
    claims = envelope()
    outer = json.loads(str(claims["data"]))
    outer["data"] = AsJson(json.loads(outer["data"]))
    return {**claims, "data": AsJson(outer)}


times = st.one_of(
    st.integers(-4000, 4000).map(lambda offset: int(NOW.timestamp()) + offset),
    st.floats(),
    st.integers(),
    st.just(BIG_INT),
    json_values,
)
layers = json_values | st.just(DEEP) | st.text(max_size=10) | json_values.map(json.dumps)
INNER = ("data", "data")
WIX_CHANGES: Changes = {
    ("exp",): times,
    ("iat",): times,
    ("nbf",): times,
    ("aud",): json_values,
    ("data",): layers,
    ("data", "eventType"): st.sampled_from(["wix.loyalty.v1.account_updated", ""]) | json_values,
    ("data", "instanceId"): json_values,
    ("data", "data"): layers,
    (*INNER, "id"): st.text(max_size=8) | json_values,
    (*INNER, "entityFqdn"): st.sampled_from(["wix.loyalty.v1.program", "x"]) | json_values,
    (*INNER, "entityId"): st.text(max_size=8) | json_values,
    (*INNER, "eventTime"): st.sampled_from(["2026-11-22T11:59:59Z", "9999-99-99"]) | json_values,
    (*INNER, "actionEvent"): json_values,
    (*INNER, "actionEvent", "body"): layers,
    (*INNER, "actionEvent", "bodyAsJson"): layers,
    (*INNER, "actionEvent", "body", "account"): json_values,
    **{
        (*INNER, kind): st.dictionaries(st.sampled_from([entity, f"{entity}AsJson"]), layers)
        for kind, entity in (
            ("createdEvent", "entity"),
            ("updatedEvent", "currentEntity"),
            ("deletedEvent", "deletedEntity"),
        )
    },
}
claim_sets = mutated(_genuine_wix, WIX_CHANGES) | st.dictionaries(
    st.sampled_from(["data", "exp", "iat", "nbf"]), times | layers
)


@_fuzz(150)
@given(claims=claim_sets, extra_header=st.dictionaries(st.text(max_size=5), json_values))
@example(claims={**envelope(), "exp": float("nan")}, extra_header={})
@example(claims={**envelope(), "data": DEEP}, extra_header={})
@example(claims={**envelope(), "exp": BIG_INT}, extra_header={})
def test_wix_verify_on_signed_near_valid_events(
    claims: dict[str, Any], extra_header: dict[str, Any]
) -> None:
    """Events correctly signed by the site's key but with any claims, layers and entity shapes
    are rejected or parsed, never anything else; a parsed one had a future, finite exp."""
    header = json.dumps({**extra_header, "alg": "RS256", "typ": "JWT"}).encode()
    parsed = _wix_outcome(_jws(header, json.dumps(claims).encode()))
    if parsed is not None:
        exp = claims["exp"]
        assert isinstance(exp, int | float) and not isinstance(exp, bool)
        assert NOW.timestamp() < exp < float("inf")


offsets = st.integers(-2 * CLOCK_SKEW_SECONDS, 2 * CLOCK_SKEW_SECONDS)


@_fuzz(100)
@given(
    now=st.datetimes(
        min_value=datetime(2001, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
    ),
    exp=offsets,
    iat=st.none() | offsets,
    nbf=st.none() | offsets,
)
@example(now=datetime(2090, 1, 1, tzinfo=UTC), exp=60, iat=None, nbf=-60)  # far from the wall
@example(now=datetime(2002, 1, 1, tzinfo=UTC), exp=60, iat=None, nbf=60)
def test_wix_times_are_judged_by_the_given_now(
    now: datetime, exp: int, iat: int | None, nbf: int | None
) -> None:
    """exp, iat and nbf are checked against the `now` passed in, not this machine's clock: an
    event verifies exactly when exp is after now and iat, nbf are at most the skew ahead."""
    at = int(now.timestamp())
    claims = {**envelope(), "exp": at + exp}
    for name, offset in (("iat", iat), ("nbf", nbf)):
        claims.pop(name, None)
        if offset is not None:
            claims[name] = at + offset
    header = b'{"alg":"RS256","typ":"JWT"}'
    accepted = _wix_outcome(_jws(header, json.dumps(claims).encode()), now=now) is not None
    ahead = [o for o in (iat, nbf) if o is not None]
    assert accepted == (at + exp > now.timestamp() and all(o <= CLOCK_SKEW_SECONDS for o in ahead))


# -- Square -------------------------------------------------------------------------------------

SQUARE = SquareConnector(
    SquareSettings(
        name="shop",
        type="square",
        base_url="http://square.invalid",
        access_token=SecretStr("unused"),
        webhook_signature_key=SecretStr(SIGNATURE_KEY),
        webhook_url=HOOK_URL,
    )
)


def _square_outcome(raw: bytes, headers: Mapping[str, str]) -> list[ExternalEvent] | None:
    """verify_webhook's answer: the events, or None when rejected; anything else escapes."""
    try:
        events = SQUARE.verify_webhook(raw, headers, now=NOW)
    except WebhookRejected as rejected:
        assert rejected.reason
        _note(f"rejected: {rejected.reason.split('(')[0]}")
        return None
    _note("parsed")
    for one in events:
        assert isinstance(one.event_id, str) and one.event_id
        assert isinstance(one.event_type, str)
        assert one.account_id is None or isinstance(one.account_id, str)
    return events


def _signature(raw: bytes) -> str:
    mac = hmac.new(SIGNATURE_KEY.encode(), HOOK_URL.encode() + raw, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


latin1 = st.text(st.characters(codec="latin-1"), max_size=60)  # header text as HTTP delivers it
header_names = st.sampled_from([SQUARE_HEADER, SQUARE_HEADER.upper(), "content-type"]) | latin1


@_fuzz(300)
@given(raw=st.binary(max_size=2048), headers=st.dictionaries(header_names, latin1, max_size=4))
def test_square_verify_on_arbitrary_input(raw: bytes, headers: dict[str, str]) -> None:
    """Any body with any headers (unsigned) is rejected with WebhookRejected, nothing else."""
    assert _square_outcome(raw, headers) is None


def _genuine_square() -> dict[str, Any]:
    """A genuine `loyalty.account.updated` body, as the emulator sends it."""
    account = {"id": "acc-1", "balance": 5, "mapping": {"phone_number": "+14155550100"}}
    return {
        "merchant_id": "m-1",
        "type": "loyalty.account.updated",
        "event_id": "e-1",
        "created_at": "2026-11-22T12:00:00.000Z",
        "data": {"type": "loyalty_account", "id": "acc-1", "object": {"loyalty_account": account}},
    }


OBJECT = ("data", "object")
SQUARE_CHANGES: Changes = {
    ("event_id",): st.text(max_size=8) | json_values,
    ("type",): st.sampled_from(["loyalty.event.created", ""]) | json_values,
    ("data",): json_values,
    ("data", "type"): st.sampled_from(["loyalty_account", "loyalty_event"]) | json_values,
    ("data", "id"): json_values,
    OBJECT: json_values,
    (*OBJECT, "loyalty_account"): json_values,
    (*OBJECT, "loyalty_account", "id"): json_values,
    (*OBJECT, "loyalty_event"): st.dictionaries(st.just("loyalty_account_id"), json_values),
}


@_fuzz(200)
@given(
    raw=st.one_of(
        mutated(_genuine_square, SQUARE_CHANGES).map(lambda e: json.dumps(e).encode()),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=512),
        st.just(DEEP.encode()),
    ),
    name=st.sampled_from([SQUARE_HEADER, "X-Square-HmacSha256-Signature"]),
    padding_=st.sampled_from(["", " ", "\t"]),
)
@example(raw=DEEP.encode(), name=SQUARE_HEADER, padding_="")
def test_square_verify_on_signed_bodies(raw: bytes, name: str, padding_: str) -> None:
    """Bodies correctly signed for the registered URL, whatever they hold, are parsed into
    events or rejected, never anything else; a well-formed event is parsed."""
    events = _square_outcome(raw, {name: f"{padding_}{_signature(raw)}{padding_}"})
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        body = None
    well_formed = (
        isinstance(body, dict)
        and isinstance(body.get("event_id"), str)
        and body["event_id"] != ""
        and isinstance(body.get("type"), str)
    )
    assert (events is not None) == well_formed


# -- the config loader --------------------------------------------------------------------------

SECRETS = {
    "api_key": "fz-wix-api-key-Q7m2Zr8",
    "app_secret": "fz-wix-app-secret-Lp4Wc1",
    "access_token": "fz-square-token-Tn6Yb3",
    "webhook_signature_key": "fz-square-hmac-Ke9Vd5",
}
FILE_SECRET = "fz-secret-in-a-file-Hs2Qx7"
SECRET_VALUES = (*SECRETS.values(), FILE_SECRET)
MARK = "fz-"  # every secret starts so: a quote of any secret, even cut short, shows it


class Digits:
    """An integer longer than Python reads from text (4300 digits): TOML gets its digits."""

    def __init__(self, count: int) -> None:
        self.text = "9" * count

    def __repr__(self) -> str:
        return self.text


HUGE = Digits(4_400)
SECRET_FILES = ["secret", "binary", "empty", "folder", "dangling", "missing", "pem", "nul\x00"]
PROGRAM_KEYS = {
    "database": {"url": ["sqlite:///syncd.db", "postgresql://u@h/db", "nonsense", ""]},
    "wix": {
        "base_url": ["https://www.wixapis.com", "http://127.0.0.1:1", "ftp://x", ""],
        "site_id": ["site-1", ""],
        "api_key": [SECRETS["api_key"], ""],
        "api_key_file": SECRET_FILES,
        "app_id": ["app-1", ""],
        "app_secret": [SECRETS["app_secret"]],
        "app_secret_file": SECRET_FILES,
        "instance_id": ["inst-1"],
        "webhook_public_key": [PUBLIC_PEM, "not a key", ""],
        "webhook_public_key_file": SECRET_FILES,
        "requests_per_minute": [1, 0, 100_000, 100_001, 2**63, HUGE],
        "timeout_seconds": [0.5, 0, -1, 300.0, float("inf"), float("nan")],
    },
    "sync": {
        "conflict_policy": ["merge", "wix_wins", "nope"],
        "initial_policy": ["external", "max", "nope"],
        "negative_policy": ["clamp", "hold", "nope"],
        "max_auto_delta": [1, 0, 10**30],
        "max_changed_fraction": [0.5, 0, 1.5, float("nan")],
        "poll_interval_seconds": [30, 0, 86_401],
        "drift_check_cron": ["0 3 * * *", "", "every day"],
        "workers": [4, 0, 65],
    },
    "server": {"host": ["0.0.0.0", ""], "port": [8080, 0, 65_536, -1]},
}
CONNECTOR_KEYS: dict[str, list[Any]] = {
    "name": ["shop", "pos", "Shop!", "", "a" * 41],
    "type": ["square", "nope", ""],
    "base_url": ["https://connect.squareup.com", "nonsense"],
    "access_token": [SECRETS["access_token"], "", " "],
    "access_token_file": SECRET_FILES,
    "webhook_signature_key": [SECRETS["webhook_signature_key"]],
    "webhook_signature_key_file": SECRET_FILES,
    "webhook_url": [HOOK_URL, "not a url"],
    "match_on": [["email", "phone"], ["fax"], []],
    "create_missing": ["none", "both", "nope"],
    "direction": ["both", "to_wix", "sideways"],
    "requests_per_minute": [600, 0, HUGE],
    "timeout_seconds": [10.0, 0, 301],
    "square_version": ["2025-08-20", "latest"],
}
GOOD: dict[str, Any] = {
    "database": {"url": "sqlite:///syncd.db"},
    "wix": {"site_id": "site-1", "api_key": SECRETS["api_key"]},
    "connectors": [
        {
            "name": "shop",
            "type": "square",
            "access_token": SECRETS["access_token"],
            "webhook_signature_key": SECRETS["webhook_signature_key"],
            "webhook_url": HOOK_URL,
        }
    ],
}

toml_values = st.recursive(
    st.booleans()
    | st.integers()
    | st.sampled_from([2**63, -(2**63) - 1, 10**30, BIG_INT, HUGE])
    | st.floats()
    | st.text(max_size=20)
    | st.datetimes()
    | st.dates()
    | st.times(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


def _toml(value: Any) -> str:
    """`value` in TOML: tables inline, every key quoted (enough to write any document)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Digits):
        return repr(value)  # nan, inf and -inf are TOML too
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml(str(k))} = {_toml(v)}" for k, v in value.items()) + "}"
    return str(value.isoformat())  # datetime, date, time


def _document(tables: dict[str, Any]) -> bytes:
    """A whole config file: one `key = value` line per top-level key."""
    return "".join(f"{_toml(k)} = {_toml(v)}\n" for k, v in tables.items()).encode()


def _sensible(choices: list[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from(choices) | toml_values


MADE_UP_KEYS = [("wix", "api-key"), ("sync", "wrokers"), ("nope",), ("wix", "a\nb"), ("",)]
connector_tables = mutated(
    lambda: copy.deepcopy(GOOD["connectors"][0]),
    {
        **{(key,): _sensible(choices) for key, choices in CONNECTOR_KEYS.items()},
        ("access-token",): toml_values,
        ("a\nb",): toml_values,
    },
)
near_valid_documents = mutated(
    lambda: copy.deepcopy(GOOD),
    {
        **{
            (section, key): _sensible(choices)
            for section, keys in PROGRAM_KEYS.items()
            for key, choices in keys.items()
        },
        **{(section,): toml_values for section in PROGRAM_KEYS},  # a section of the wrong type
        ("connectors",): st.lists(connector_tables, max_size=3) | toml_values,
        **{path: toml_values for path in MADE_UP_KEYS},
    },
)


documents = st.one_of(
    near_valid_documents.map(_document),
    st.dictionaries(st.text(max_size=10), toml_values, max_size=4).map(_document),
    st.binary(max_size=200),
    near_valid_documents.map(lambda doc: _document(doc) + b"\n\xff\xfe = 1\n"),
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the secret files the fuzzed configs name, good and bad."""
    folder = tmp_path_factory.mktemp("config")
    (folder / "secret").write_text(f"{FILE_SECRET}\n")
    (folder / "binary").write_bytes(b"\xff\xfe\x00secret")
    (folder / "empty").write_text("")
    (folder / "folder").mkdir()
    (folder / "dangling").symlink_to(folder / "nowhere")
    (folder / "pem").write_text(PUBLIC_PEM)
    return folder


def _problems(path: Path | None, environ: Mapping[str, str]) -> list[str]:
    """What `syncd check-config` decides before it prints: its problems ([] when fine), each
    checked to be one printable `key: what is wrong` line that quotes no secret."""
    try:
        settings = load_settings(path, environ=environ)
        connectors.typed_settings(settings)
        shown = repr(masked(settings))
    except ConfigError as error:
        assert error.problems
        _note("refused")
        for problem in error.problems:
            assert problem.isprintable() and ": " in problem, problem
            assert MARK not in problem, problem
        return error.problems
    assert MARK not in shown, shown
    _note("loaded")
    return []


@_fuzz(250)
@given(document=documents)
@example(document=_document(GOOD))
def test_config_loader_on_random_documents(workspace: Path, document: bytes) -> None:
    """Any config file (near-valid, random TOML, not TOML, not UTF-8) loads or is refused with
    one-line problems naming the key; no secret is ever quoted."""
    config = workspace / "syncd.toml"
    config.write_bytes(document)
    _problems(config, {})


SECRET_VARIABLES = ["SYNCD_WIX__API_KEY", "SYNCD_WIX__APP_SECRET", "syncd_wix__api_key"]
FILE_VARIABLES = [
    "SYNCD_WIX__API_KEY_FILE",
    "SYNCD_WIX__API_KEY__X_FILE",
    "SYNCD_WIX__APP_SECRET_FILE",
    "SYNCD_WIX__WEBHOOK_PUBLIC_KEY_FILE",
    "SYNCD_X_FILE",
    "SYNCD___FILE",
]
TABLE_VARIABLES = ["SYNCD_WIX", "SYNCD_SYNC", "SYNCD_DATABASE", "SYNCD_SERVER", "SYNCD_CONNECTORS"]
PLAIN_VARIABLES = [
    "SYNCD_CONFIG",
    "SYNCD_WIX__SITE_ID",
    "SYNCD_WIX__REQUESTS_PER_MINUTE",
    "SYNCD_WIX__NOPE",
    "SYNCD_SERVER__PORT",
    "SYNCD_SYNC__WORKERS",
    "SYNCD_SYNC__CONFLICT_POLICY",
    "SYNCD_DATABASE__URL",
    "SYNCD_CONNECTORS__0__NAME",
]
env_text = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=30)
plain_values = st.one_of(
    env_text,
    st.sampled_from([DEEP, "9" * 5000, "[]", "{}", "null", "1e999"]),
    json_values.map(json.dumps),
)
table_values = st.one_of(
    plain_values,
    st.lists(connector_tables, max_size=2).map(lambda t: json.dumps(t, default=str)),
    st.builds(lambda k: json.dumps({"api_key": SECRETS["api_key"], k: 1}), st.text(max_size=5)),
)
variables = st.one_of(  # secrets only under secret names: anywhere else printing them is fine
    st.tuples(st.sampled_from(SECRET_VARIABLES), st.sampled_from(SECRET_VALUES) | plain_values),
    st.tuples(st.sampled_from(FILE_VARIABLES), st.sampled_from(SECRET_FILES[:-1]) | env_text),
    st.tuples(st.sampled_from(TABLE_VARIABLES), table_values),
    st.tuples(
        st.sampled_from(PLAIN_VARIABLES) | env_text.map(lambda name: f"SYNCD_{name.upper()}"),
        plain_values,
    ),
)


@_fuzz(250)
@given(
    environ=st.lists(variables, max_size=4).map(dict),
    from_env=st.booleans(),
)
@example(environ={"SYNCD_WIX": "not json"}, from_env=False)
@example(environ={"SYNCD_CONNECTORS": DEEP}, from_env=False)
@example(
    environ={"SYNCD_WIX__API_KEY_FILE": "secret", "SYNCD_WIX__API_KEY__X_FILE": "secret"},
    from_env=False,
)
def test_config_loader_on_random_environment(
    workspace: Path, environ: dict[str, str], from_env: bool
) -> None:
    """Any SYNCD_* variables over a good file (or naming the file) load or are refused with
    one-line problems; no secret is ever quoted."""
    config = workspace / "env.toml"
    config.write_bytes(_document(GOOD))
    if from_env:
        environ = {**environ, "SYNCD_CONFIG": str(config)}
    _problems(None if from_env else config, environ)


@_fuzz(150)
@given(tables=st.lists(connector_tables, max_size=3), as_json=st.booleans())
@example(tables=[GOOD["connectors"][0]] * 2, as_json=False)  # repeated names, secrets inside
def test_config_loader_on_random_connector_tables(
    workspace: Path, tables: list[dict[str, Any]], as_json: bool
) -> None:
    """Any [[connectors]] tables, in the file or as SYNCD_CONNECTORS JSON, are checked by their
    type or refused with one-line problems; a secret in a table is never quoted."""
    config = workspace / "connectors.toml"
    doc = {k: v for k, v in GOOD.items() if k != "connectors"}
    if as_json:
        config.write_bytes(_document(doc))
        _problems(config, {"SYNCD_CONNECTORS": json.dumps(tables, default=str)})
    else:
        config.write_bytes(_document({**doc, "connectors": tables}))
        _problems(config, {})


WIX = '[wix]\nsite_id = "s"\n'
REGRESSIONS: dict[str, tuple[bytes, dict[str, str], str]] = {  # file, environment, problem
    "file not UTF-8": (b'[wix]\nsite_id = "\xff"\n', {}, "not UTF-8 text"),
    "integer of 4400 digits": (
        b"[server]\nport = " + b"9" * 4400 + b"\n",
        {},
        "invalid TOML: Exceeds the limit (4300 digits)",
    ),
    "nested too deeply": (b"x = " + DEEP.encode() + b"\n", {}, "nested too deeply"),
    "dotted key too deep": (b"a" + b".a" * 3000 + b" = 1\n", {}, "nested too deeply"),
    "secret file not UTF-8": (
        f'{WIX}api_key_file = "binary"\n'.encode(),
        {},
        "binary is not UTF-8 text",
    ),
    "secret path with NUL": (
        f'{WIX}api_key_file = "a\\u0000b"\n'.encode(),
        {},
        "is not a usable file path",
    ),
    "line break in a key": (
        f'{WIX}api_key = "k"\n"a\\nb" = 1\n'.encode(),
        {},
        "wix.a\\nb: unknown key",
    ),
    "line break in a path": (
        f'{WIX}api_key_file = "a\\nb"\n'.encode(),
        {},
        "a\\nb (No such file",
    ),
    "section variable not JSON": (
        _document(GOOD),
        {"SYNCD_SYNC": "workers=8"},
        "SYNCD_SYNC: not a JSON object",
    ),
    "connectors variable too deep": (
        _document(GOOD),
        {"SYNCD_CONNECTORS": DEEP},
        "SYNCD_CONNECTORS: JSON nested too deeply",
    ),
    "connectors variable huge number": (
        _document(GOOD),
        {"SYNCD_CONNECTORS": "9" * 5000},
        "SYNCD_CONNECTORS: JSON nested too deeply or a number too long",
    ),
    "secret file variables overlap": (
        _document(GOOD),
        {"SYNCD_WIX__API_KEY_FILE": "secret", "SYNCD_WIX__API_KEY__X_FILE": "secret"},
        "wix.api_key is already set by another *_FILE variable",
    ),
    "repeated connector names (secrets inside)": (
        _document({**GOOD, "connectors": GOOD["connectors"] * 2}),
        {},
        "connector names must be unique",
    ),
    "public key file holding a secret": (
        f'{WIX}api_key = "k"\nwebhook_public_key_file = "secret"\n'.encode(),
        {},
        "wix.webhook_public_key: not an RSA public key",
    ),
}


@pytest.mark.parametrize("case", sorted(REGRESSIONS))
def test_config_faults_found_by_fuzzing_are_problems(workspace: Path, case: str) -> None:
    """Each fault the fuzzing found (a traceback, a problem over two lines, a secret quoted in
    a problem) is now a ConfigError of one-line problems, quoting no secret, that says what is
    wrong."""
    text, environ, expected = REGRESSIONS[case]
    environ = {k: str(workspace / v) if k.endswith("_FILE") else v for k, v in environ.items()}
    config = workspace / "regression.toml"
    config.write_bytes(text)
    problems = _problems(config, environ)
    assert [p for p in problems if expected in p], problems


# -- the command line ---------------------------------------------------------------------------


def _check_config(config: Path, environ: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    return subprocess.run(
        [sys.executable, "-m", "syncd", "check-config", "--config", str(config)],
        env=clean | dict(environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _assert_clean_exit(result: subprocess.CompletedProcess[str]) -> None:
    """Exit 0 with the masked config, or exit 2 with every stderr line one `syncd: ` problem;
    never a traceback, never a secret."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert MARK not in output, output
    if result.returncode == 0:
        assert result.stdout.splitlines()[-1].startswith("ok: "), output
        return
    assert result.returncode == 2, output
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("syncd: ") and ": " in line[7:] for line in lines), lines


@_fuzz(5)
@given(document=documents)
def test_check_config_command_on_random_documents(workspace: Path, document: bytes) -> None:
    """`syncd check-config` as its own process on fuzzed files exits 0 or 2 with one line per
    problem: never a traceback, never a secret."""
    config = workspace / "cli.toml"
    config.write_bytes(document)
    _assert_clean_exit(_check_config(config, {}))


@pytest.mark.parametrize(
    "case", ["file not UTF-8", "line break in a key", "section variable not JSON"]
)
def test_check_config_command_on_found_faults(workspace: Path, case: str) -> None:
    """`syncd check-config` on faults the fuzzing found exits 2 with one `syncd: ` line per
    problem and no traceback."""
    text, environ, _ = REGRESSIONS[case]
    config = workspace / "cli-regression.toml"
    config.write_bytes(text)
    result = _check_config(config, environ)
    assert result.returncode == 2
    _assert_clean_exit(result)
