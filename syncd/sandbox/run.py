"""`syncd sandbox`: serve the bundled emulators on local ports and say how to use them."""

from __future__ import annotations

import sys
from typing import TextIO

from connectors.hubspot.emulator import HubSpotEmulator
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
    """Serve Wix (on `port`), Square (`port + 1`) and HubSpot (`port + 2`) emulators, each
    with `accounts` customers (the same people everywhere), until Ctrl-C.

    `webhook_url` is where Wix delivers; when it ends in `/webhooks/wix`, Square and HubSpot
    deliver beside it, to `/webhooks/shop` and `/webhooks/crm` (the connector names printed)."""
    spoke_hooks = webhook_url.removesuffix("/wix") if webhook_url else None
    if webhook_url and spoke_hooks == webhook_url:
        spoke_hooks = None
    wix = WixEmulator(seed=seed, webhook_url=webhook_url)
    wix.activate()
    wix.seed_accounts(accounts)
    square = SquareEmulator(
        seed=seed + 1, webhook_url=f"{spoke_hooks}/shop" if spoke_hooks else None
    )
    square.seed_accounts(accounts)
    hubspot = HubSpotEmulator(
        seed=seed + 2, webhook_url=f"{spoke_hooks}/crm" if spoke_hooks else None
    )
    hubspot.seed_contacts(accounts)
    creds = wix.credentials
    base = f"http://{host}:{port}"
    square_base, hubspot_base = f"http://{host}:{port + 1}", f"http://{host}:{port + 2}"
    spokes_say = f"{spoke_hooks}/shop and {spoke_hooks}/crm" if spoke_hooks else "kept, not sent"
    out.write(
        f"syncd sandbox (the fixed credentials below are the sandbox's own, not secrets)\n"
        f"  Wix Loyalty  {base}\n"
        f"    site id {creds.site_id}, api key {creds.api_key}\n"
        f"    program ACTIVE, {accounts} customers (seed {seed})\n"
        f"    webhooks {webhook_url or 'kept, not sent (use --webhook-url URL)'}; "
        f"public key at {base}/_sandbox/webhooks/public-key\n"
        f"  Square       {square_base}\n"
        f"    access token {square.access_token}, {accounts} customers\n"
        f"  HubSpot      {hubspot_base}\n"
        f"    access token {hubspot.access_token}, client secret {hubspot.client_secret}, "
        f"{accounts} contacts\n"
        f"  spoke webhooks {spokes_say}\n"
        f"  admin        /_sandbox/ on each: knobs, accounts, stats, activity, webhooks, ...\n"
        "Point syncd at it (config file):\n"
        f'  [wix]\n  base_url = "{base}"\n  site_id = "{creds.site_id}"\n'
        f'  api_key = "{creds.api_key}"\n'
        f'  [[connectors]]\n  name = "shop"\n  type = "square"\n  base_url = "{square_base}"\n'
        f'  access_token = "{square.access_token}"\n'
        f'  [[connectors]]\n  name = "crm"\n  type = "hubspot"\n  base_url = "{hubspot_base}"\n'
        f'  access_token = "{hubspot.access_token}"\n'
        "Ctrl-C stops it.\n"
    )
    out.flush()
    serve({port: wix.app, port + 1: square.app, port + 2: hubspot.app}, host)
