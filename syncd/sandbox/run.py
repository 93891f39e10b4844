"""`syncd sandbox`: serve the bundled emulators on local ports and say how to use them."""

from __future__ import annotations

import sys
from typing import TextIO

from connectors.square.emulator import SquareEmulator
from syncd.sandbox.server import serve
from syncd.sandbox.wix import WixEmulator


def serve_sandbox(
    *,
    host: str,
    port: int,
    accounts: int,
    seed: int,
    webhook_url: str | None = None,
    out: TextIO = sys.stdout,
) -> None:
    """Serve Wix (on `port`) and Square (on `port + 1`) emulators, each with `accounts`
    customers (the same people on both sides), until Ctrl-C."""
    wix = WixEmulator(seed=seed, webhook_url=webhook_url)
    wix.activate()
    wix.seed_accounts(accounts)
    square = SquareEmulator(seed=seed + 1)
    square.seed_accounts(accounts)
    creds = wix.credentials
    base, square_base = f"http://{host}:{port}", f"http://{host}:{port + 1}"
    out.write(
        f"syncd sandbox (the fixed credentials below are the sandbox's own, not secrets)\n"
        f"  Wix Loyalty  {base}\n"
        f"    site id {creds.site_id}, api key {creds.api_key}\n"
        f"    program ACTIVE, {accounts} customers (seed {seed})\n"
        f"    webhooks {webhook_url or 'kept, not sent (use --webhook-url URL)'}; "
        f"public key at {base}/_sandbox/webhooks/public-key\n"
        f"  Square       {square_base}\n"
        f"    access token {square.access_token}, {accounts} customers\n"
        f"  admin        /_sandbox/ on each: knobs, accounts, stats, activity, webhooks, ...\n"
        "Point syncd at it (config file):\n"
        f'  [wix]\n  base_url = "{base}"\n  site_id = "{creds.site_id}"\n'
        f'  api_key = "{creds.api_key}"\n'
        f'  [[connectors]]\n  name = "shop"\n  type = "square"\n  base_url = "{square_base}"\n'
        f'  access_token = "{square.access_token}"\n'
        "Ctrl-C stops it.\n"
    )
    out.flush()
    serve({port: wix.app, port + 1: square.app}, host)
