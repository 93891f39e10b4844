"""`syncd run` as a real process, given distinctive secrets through every channel it takes them
(environment, secret files, the config file, the database URL): after real traffic, forged
webhooks and calls refused for a revoked credential, no secret, nor an obvious encoding of one,
is in any log line, HTTP answer or command output.

There is no log-level setting (the daemon logs at INFO), so there is no DEBUG run to make.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from connectors.square.emulator import SquareEmulator
from syncd.sandbox.server import serve_in_thread
from syncd.sandbox.wix import WixEmulator
from tests.processes import clean_env, free_port

SECRETS = {  # '/', '+' and '=' make the URL-encoded forms differ from the plain ones
    "wix api key": "wixkey.Q7m/2Zr+8Lp=4",  # SYNCD_WIX__API_KEY
    "wix app secret": "wixapp.Hs2/Qx7+Tn=6",  # wix.app_secret_file
    "square access token": "EAAAl.Tn6/Yb3+Ke=9V",  # access_token_file
    "square signature key": "sqhmac.Vd5/Rp1+Wc=3",  # in the config file
    "database password": "dbpass.Mz8-Jk4_Xq7",  # a query parameter of the database URL
}
CONFIG = """
[database]
url = "sqlite:///file:{db}?uri=true&password={db_password}"
[wix]
base_url = "{wix_url}"
site_id = "{site_id}"
app_secret_file = "secrets/wix_app_secret"
webhook_public_key_file = "wix.pem"
requests_per_minute = 100000
timeout_seconds = 2.0
[sync]
poll_interval_seconds = 1
drift_check_cron = ""
[server]
host = "127.0.0.1"
port = {port}
[[connectors]]
name = "shop"
type = "square"
base_url = "{square_url}"
access_token_file = "secrets/square_token"
webhook_signature_key = "{signature_key}"
webhook_url = "{hook}"
requests_per_minute = 100000
timeout_seconds = 2.0
"""


def encodings(secret: str) -> dict[str, str]:
    """The forms in which a secret would still be readable: as is, URL-encoded, hex, and
    base64 (standard and URL-safe) at each of the three alignments inside a longer text."""
    raw = secret.encode()
    found = {
        "plain": secret,
        "url-encoded": urllib.parse.quote(secret, safe=""),
        "form-encoded": urllib.parse.quote_plus(secret),
        "hex": binascii.hexlify(raw).decode(),
    }
    for shift in range(3):
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            text = encode(b"\0" * shift + raw).decode().rstrip("=")
            # the characters that depend only on the secret's own bytes, whatever precedes it
            start = (shift * 8 + 5) // 6
            stop = ((shift + len(raw)) * 8) // 6
            found[f"{name}+{shift}"] = text[start:stop]
    return found


def leaks(text: str, secret: str) -> list[str]:
    """The encodings of `secret` found in `text` (case-blind for the plain forms)."""
    folded = text.lower()
    return [
        name
        for name, form in encodings(secret).items()
        if form in text or (not name.startswith("base64") and form.lower() in folded)
    ]


@dataclass
class Run:
    """What one daemon run showed the world: every output, by where it appeared."""

    outputs: dict[str, str]
    log_events: list[dict[str, object]]


def _env() -> dict[str, str]:
    """This environment without SYNCD_* variables, plus the Wix API key (its only source)."""
    return clean_env({"SYNCD_WIX__API_KEY": SECRETS["wix api key"]})


def _syncd(config: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "syncd", *args, "--config", str(config)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}"


def _until(check: Callable[[], object], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)


def _write_config(folder: Path, wix: WixEmulator, wix_url: str, square_url: str, port: int) -> Path:
    secrets = folder / "secrets"
    secrets.mkdir()
    (secrets / "wix_app_secret").write_text(SECRETS["wix app secret"] + "\n")
    (secrets / "square_token").write_text(SECRETS["square access token"] + "\n")
    (folder / "wix.pem").write_text(wix.public_key_pem)
    config = folder / "syncd.toml"
    config.write_text(
        CONFIG.format(
            db=folder / "syncd.db",
            db_password=SECRETS["database password"],
            wix_url=wix_url,
            site_id=wix.credentials.site_id,
            port=port,
            square_url=square_url,
            signature_key=SECRETS["square signature key"],
            hook=f"http://127.0.0.1:{port}/webhooks/shop",
        )
    )
    return config


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Both emulators on localhost, a backfill, then `syncd run` through genuine and forged
    webhooks, polls, syncs, and calls refused after both credentials are revoked; with what
    the CLI says about the same config."""
    folder = tmp_path_factory.mktemp("secrets")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    wix = WixEmulator(seed=31, api_key=SECRETS["wix api key"], webhook_url=f"{base}/webhooks/wix")
    wix.activate()
    wix.knobs.requests_per_minute = 0
    square = SquareEmulator(
        seed=32,
        access_token=SECRETS["square access token"],
        signature_key=SECRETS["square signature key"],
        webhook_url=f"{base}/webhooks/shop",
    )
    square.knobs.requests_per_minute = 0
    people = [{"email": f"leak{i}@example.com", "phone": f"+1415666{i:04d}"} for i in range(3)]
    wix_ids = [a["id"] for a in wix.seed_accounts([{**p, "balance": 50} for p in people])]
    square_ids = [a["id"] for a in square.seed_accounts([{**p, "balance": 50} for p in people])]
    for emulator in (wix, square):
        emulator.webhooks.reset()  # nothing queued for a daemon not yet listening
    outputs: dict[str, str] = {}
    with serve_in_thread(wix.app) as wix_at, serve_in_thread(square.app) as square_at:
        config = _write_config(folder, wix, wix_at.url, square_at.url, port)
        outputs["syncd --reconcile"] = _syncd(config, "--reconcile")
        stdout, stderr = folder / "daemon.out", folder / "daemon.err"
        with stdout.open("w") as out, stderr.open("w") as err:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "syncd", "run", "--config", str(config)],
                env=_env(),
                stdout=out,
                stderr=err,
            )
        try:
            _until(lambda: daemon.poll() is not None or _ready(base), "the daemon is ready")
            assert daemon.poll() is None, stderr.read_text()
            wix.activity(wix_ids[0], "earn", 10)  # a genuine Wix webhook, then a sync
            square.activity(square_ids[1], "sale", 20)  # a genuine Square webhook and poll
            _until(lambda: _balance(square, square_ids[0]) == 60, "the Wix change reached Square")
            _until(lambda: _balance_wix(wix, wix_ids[1]) == 70, "the sale reached Wix")
            _until(lambda: _received(base) == {"wix", "shop"}, "webhooks from both were stored")
            httpx.post(f"{base}/webhooks/wix", content="forged.jwt.token")
            httpx.post(
                f"{base}/webhooks/shop",
                content=b'{"event_id": "forged"}',
                headers={"x-square-hmacsha256-signature": "forged"},
            )
            square.access_token = "revoked"  # every call syncd makes now fails with 401
            wix.gatekeeper.credentials = dataclasses.replace(wix.credentials, api_key="revoked")
            square.activity(square_ids[2], "sale", 5)
            wix.activity(wix_ids[2], "earn", 5)
            _until(
                lambda: {"wix: ", "shop: "} <= _refused_calls(stderr.read_text()),
                "calls to both remotes refused for their credential",
            )
            for path in ("/status", "/metrics", "/readyz", "/healthz"):
                outputs[f"GET {path}"] = httpx.get(f"{base}{path}").text
            for args in (
                ("check-config",),
                ("check-config", "--connect"),
                ("status",),
                ("status", "--json"),
                ("conflicts", "list"),
            ):
                outputs[f"syncd {' '.join(args)}"] = _syncd(config, *args)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=20)
    outputs["daemon stdout"] = stdout.read_text()
    outputs["daemon stderr"] = stderr.read_text()
    lines = outputs["daemon stderr"].splitlines()
    yield Run(outputs, [json.loads(line) for line in lines if line.startswith("{")])


def _refused_calls(log: str) -> set[str]:
    """Which remotes' refusals (401) the log reports, by the prefix of their error."""
    lines = [line for line in log.splitlines() if line.startswith("{") and "401" in line]
    errors = [str(json.loads(line).get("error", "")) for line in lines]
    return {prefix for prefix in ("wix: ", "shop: ") for e in errors if e.startswith(prefix)}


def _received(base: str) -> set[str]:
    """The sources the daemon has stored webhooks from, by its metrics."""
    metrics = httpx.get(f"{base}/metrics").text
    counter = "syncd_webhooks_received_total"
    return {s for s in ("wix", "shop") if f'{counter}{{source="{s}"}}' in metrics}


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _balance(square: SquareEmulator, account_id: str) -> int:
    return int(square.account(account_id)["balance"])


def _balance_wix(wix: WixEmulator, account_id: str) -> int:
    accounts = {a["id"]: a for a in wix.state.all_accounts()}
    return int(accounts[account_id]["points"]["balance"])


def test_the_run_exercised_every_path(run: Run) -> None:
    """The control for the search below: the run verified and refused webhooks from both
    sources, logged calls refused for a revoked credential, and the CLI answered."""
    rejected = [e for e in run.log_events if e.get("event") == "webhook.rejected"]
    assert {str(e.get("source")) for e in rejected} == {"wix", "shop"}
    assert {"wix: ", "shop: "} <= _refused_calls(run.outputs["daemon stderr"])
    assert 'syncd_webhooks_received_total{source="wix"}' in run.outputs["GET /metrics"]
    assert 'syncd_webhooks_received_total{source="shop"}' in run.outputs["GET /metrics"]
    assert run.outputs["syncd check-config"].startswith("exit 0\n")
    assert "wix.api_key = ********" in run.outputs["syncd check-config"]
    assert run.outputs["syncd check-config --connect"].startswith("exit 1\n")
    assert "database: reachable" in run.outputs["syncd check-config --connect"]


@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_no_output_holds_a_secret(run: Run, secret: str) -> None:
    """No log line, HTTP answer or command output holds the secret in any obvious encoding."""
    found = {where: leaks(text, SECRETS[secret]) for where, text in run.outputs.items()}
    assert {where: names for where, names in found.items() if names} == {}


KINDS = ["plain", "url-encoded", "form-encoded", "hex", "base64", "base64url"]


@pytest.mark.parametrize("kind", KINDS)
def test_the_search_finds_each_encoding(kind: str) -> None:
    """The search is not blind: each encoding of a secret, embedded in a log line after any
    number of other bytes, is found."""
    secret = SECRETS["square access token"]
    for prefix in (b"", b"B", b"Ba", b"Basic "):
        payload = prefix + secret.encode()
        forms = {
            "plain": payload.decode(),
            "url-encoded": urllib.parse.quote(payload.decode(), safe=""),
            "form-encoded": urllib.parse.quote_plus(payload.decode()),
            "hex": binascii.hexlify(payload).decode(),
            "base64": base64.b64encode(payload).decode(),
            "base64url": base64.urlsafe_b64encode(payload).decode(),
        }
        line = f'{{"event": "x", "header": "{forms[kind]}"}}'
        assert [n for n in leaks(line, secret) if n.split("+")[0] == kind], prefix
