"""`syncd sandbox`: serve the bundled emulators on local ports and say how to use them."""

from __future__ import annotations

import sys
from typing import TextIO

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
    """Serve a Wix emulator with an ACTIVE program and `accounts` customers until Ctrl-C."""
    wix = WixEmulator(seed=seed, webhook_url=webhook_url)
    wix.activate()
    wix.seed_accounts(accounts)
    creds = wix.credentials
    base = f"http://{host}:{port}"
    out.write(
        f"syncd sandbox: Wix Loyalty emulator on {base}\n"
        f"  site id     {creds.site_id}\n"
        f"  api key     {creds.api_key}   (the sandbox's fixed key, not a secret)\n"
        f"  program     ACTIVE, {accounts} customers seeded (seed {seed})\n"
        f"  webhooks    {webhook_url or 'kept, not sent (use --webhook-url URL)'}\n"
        f"  public key  {base}/_sandbox/webhooks/public-key\n"
        f"  admin       {base}/_sandbox/ knobs, accounts, transactions, stats, activity, ...\n"
        "Point syncd at it:\n"
        f"  SYNCD_WIX__BASE_URL={base} SYNCD_WIX__SITE_ID={creds.site_id} "
        f"SYNCD_WIX__API_KEY={creds.api_key} syncd check-config --connect\n"
        "Ctrl-C stops it.\n"
    )
    out.flush()
    serve({port: wix.app}, host)
