"""`syncd demo`: the Wix side of syncd working against the bundled sandbox, no accounts needed.

It starts the Wix emulator and a webhook receiver on local ports, then: pages every account,
plays customers redeeming online and till sales carried into Wix (Adjust Points with the
revision just read and a `syncd:` tag), shows a stale revision refused and re-planned, receives
and verifies the signed webhooks (some sent twice, as Wix does), and finally checks the ledger:
every balance equals the sum of its transactions. Exit 0 when everything holds.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

import connectors
from connectors.square.emulator import SquareEmulator
from syncd.clock import utcnow
from syncd.errors import ConflictError, WebhookRejected
from syncd.reconcile.keys import phone_key
from syncd.reconcile.run import Options, reconcile
from syncd.sandbox.server import serve_in_thread
from syncd.sandbox.wix import WixEmulator
from syncd.settings import Settings, WixSettings
from syncd.store.db import open_store
from syncd.wix.client import WixClient
from syncd.wix.models import Account
from syncd.wix.webhooks import load_public_key, verify

SANDBOX_RATE = 6_000  # requests per minute: the sandbox's limit, raised so the demo is quick
REDEMPTIONS = 20
TILL_SALES = 10
TILL_ONLY = 12  # customers known only at the Square till


@dataclass
class Receiver:
    """Verifies each webhook and keeps the first delivery of each event id."""

    public_key_pem: str
    seen: set[str] = field(default_factory=set)
    duplicates: int = 0
    rejected: int = 0

    def app(self) -> Starlette:
        key = load_public_key(self.public_key_pem)

        async def wix(request: Request) -> Response:
            try:
                body = await request.body()
            except ClientDisconnect:  # the emulator stopped mid-delivery: it will not retry
                return Response(status_code=400)
            try:
                event = verify(body, key, now=utcnow())
            except WebhookRejected:
                self.rejected += 1
                return Response(status_code=401)
            if event.event_id in self.seen:
                self.duplicates += 1
            self.seen.add(event.event_id)
            return Response(status_code=200)

        return Starlette(routes=[Route("/webhooks/wix", wix, methods=["POST"])])


def demo(*, accounts: int = 250, seed: int = 0, out: TextIO = sys.stdout) -> int:
    """Run the demo; 0 when every webhook verified and every balance matches its ledger."""
    return asyncio.run(_demo(accounts, seed, out))


async def _demo(accounts: int, seed: int, out: TextIO) -> int:
    say = _Printer(out)
    started = time.monotonic()
    wix_site = WixEmulator(seed=seed)
    wix_site.knobs.requests_per_minute = SANDBOX_RATE
    wix_site.knobs.delivery.duplicate_rate = 0.1
    wix_site.activate()
    wix_site.seed_accounts(accounts)
    receiver = Receiver(wix_site.public_key_pem)
    say.line("syncd demo: Wix and a Square till, both emulated on this machine")
    with serve_in_thread(receiver.app()) as hooks, serve_in_thread(wix_site.app) as served:
        wix_site.webhooks.url = f"{hooks.url}/webhooks/wix"
        say.step(f"Wix emulator on {served.url}: program ACTIVE, {accounts} customers seeded")
        say.step(f"webhook receiver on {wix_site.webhooks.url} (RS256 JWTs, sandbox public key)")
        settings = WixSettings(
            base_url=served.url,
            site_id=wix_site.credentials.site_id,
            api_key=SecretStr(wix_site.credentials.api_key),
            requests_per_minute=SANDBOX_RATE,
        )
        async with WixClient(settings) as wix:
            everyone = await _read_all(wix, say)
            await _play_activity(wix, wix_site, everyone, random.Random(seed), say)
            backfilled = await _backfill(wix, wix_site, random.Random(seed + 1), say)
            await _await_webhooks(wix_site, receiver)
            say.step(
                f"webhooks: {len(receiver.seen)} events verified, "
                f"{receiver.duplicates} duplicate deliveries dropped, {receiver.rejected} rejected"
            )
            balanced, total = await _ledger_check(wix)
            say.step(
                f"ledger check: {balanced} of {total} balances equal the sum of their transactions"
            )
            say.line(
                f"done in {time.monotonic() - started:.1f}s: {wix.calls} API calls, "
                f"{wix.rate_limited} rate-limited (the client budget keeps it at 0)"
            )
    say.line("next: `syncd sandbox --port 9000` keeps the emulator running for your own tries")
    emitted = {e.id for e in wix_site.webhooks.events} - {e.id for e in wix_site.webhooks.dropped}
    ok = backfilled and balanced == total and receiver.rejected == 0 and receiver.seen == emitted
    return 0 if ok else 1


async def _read_all(wix: WixClient, say: _Printer) -> list[Account]:
    everyone: list[Account] = []
    pages = 0
    async for page in wix.iter_accounts():
        pages += 1
        everyone.extend(page.items)
    points = sum(a.balance for a in everyone)
    say.step(
        f"read every account, 100 a page: {len(everyone)} accounts in {pages} pages, "
        f"{points:,} points in all"
    )
    return everyone


async def _play_activity(
    wix: WixClient, site: WixEmulator, everyone: list[Account], rng: random.Random, say: _Printer
) -> None:
    """Customers redeem online (site side); till sales are carried in with Adjust Points."""
    redeemers = [a for a in everyone if a.balance >= 10]
    for account in rng.sample(redeemers, min(REDEMPTIONS, len(redeemers))):
        site.activity(account.id, "redeem", rng.randint(1, account.balance // 2))
    sales = rng.sample(everyone, min(TILL_SALES, len(everyone)))
    conflicts = 0
    for i, stale in enumerate(sales):
        if i == 0:  # the customer redeems online between our read and our write
            site.activity(stale.id, "earn", 5)
        conflicts += await _carry_sale(wix, stale, rng.randint(5, 80))
    say.step(
        f"{REDEMPTIONS} redemptions made online; {len(sales)} till sales carried into Wix "
        f"(Adjust Points at the revision read, tagged syncd:<operation>); "
        f"{conflicts} refused as stale (409), re-read and re-planned"
    )


async def _carry_sale(wix: WixClient, account: Account, points: int) -> int:
    """Adjust at the revision read; on 409 re-read once and try again. Returns conflicts met."""
    operation = uuid.uuid4()
    for attempt in range(2):
        try:
            await wix.adjust_points(
                account.id,
                amount=points,
                revision=account.revision,
                description=f"syncd:{operation} till sale",
            )
            return attempt
        except ConflictError:
            account = await wix.get_account(account.id)
    raise RuntimeError("the account kept changing under the demo")


async def _backfill(
    wix: WixClient, wix_site: WixEmulator, rng: random.Random, say: _Printer
) -> bool:
    """The same customers at a Square till, a third of them with points Wix never saw, and a
    few only at the till: `syncd --reconcile` links, creates and carries; True when every
    linked pair ends equal."""
    square = SquareEmulator(seed=rng.randint(0, 9999))
    square.knobs.requests_per_minute = SANDBOX_RATE
    for account in wix_site.state.all_accounts():
        contact = wix_site.state.contacts.get(account["contactId"])
        phones = (contact.get("info", {}).get("phones") or {}).get("items", [])
        phone = phone_key(phones[0].get("phone") if phones else None)
        balance = int(account["points"]["balance"])
        if phone:
            extra = rng.choice((0, 0, rng.randint(5, 120)))  # sales Wix has not heard of
            square.seed_accounts(
                [
                    {
                        "email": account["contact"].get("email"),
                        "phone": phone,
                        "balance": balance + extra,
                    }
                ]
            )
    square.seed_accounts(
        [
            {
                "email": f"till-only-{i}@example.com",
                "phone": f"+1628555{i:04d}",
                "balance": rng.randint(10, 300),
            }
            for i in range(TILL_ONLY)
        ]
    )
    with serve_in_thread(square.app) as square_at, tempfile.TemporaryDirectory() as scratch:
        settings = Settings(
            database={"url": f"sqlite:///{Path(scratch) / 'syncd.db'}"},
            wix=wix.settings,
            connectors=[
                {
                    "name": "shop",
                    "type": "square",
                    "base_url": square_at.url,
                    "access_token": square.access_token,
                    "create_missing": "wix",
                    "requests_per_minute": SANDBOX_RATE,
                }
            ],
        )
        [typed] = connectors.typed_settings(settings)
        engine = open_store(settings.database.url)
        async with connectors.create(typed) as till:
            report = await reconcile(engine, settings, wix, till, Options())
        engine.dispose()
    say.step(f"backfill from a Square till on {square_at.url} (`syncd --reconcile`):")
    for line in report.render().splitlines()[1:]:
        say.line(f"      {line.strip()}")
    wix_balances = {a["id"]: int(a["points"]["balance"]) for a in wix_site.state.all_accounts()}
    square_balances = {a["id"]: int(a["balance"]) for a in square.accounts()}
    every_one_linked = sum(report.linked.values()) == len(square_balances)
    return (
        report.clean
        and every_one_linked
        and (sum(wix_balances.values()) == sum(square_balances.values()))
    )


async def _await_webhooks(site: WixEmulator, receiver: Receiver, timeout: float = 10.0) -> None:
    """Wait until every emitted, undropped event reached the receiver (or the timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        emitted = {e.id for e in site.webhooks.events} - {e.id for e in site.webhooks.dropped}
        if not site.webhooks.pending and emitted <= receiver.seen:
            return
        await asyncio.sleep(0.05)


async def _ledger_check(wix: WixClient) -> tuple[int, int]:
    sums: dict[str, int] = {}
    async for entry in wix.iter_transactions():
        sums[entry.account_id] = sums.get(entry.account_id, 0) + entry.amount
    balances = [a for page in [p async for p in wix.iter_accounts()] for a in page.items]
    balanced = sum(1 for a in balances if sums.get(a.id, 0) == a.balance)
    return balanced, len(balances)


class _Printer:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.count = 0

    def line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def step(self, text: str) -> None:
        self.count += 1
        self.line(f"  [{self.count}] {text}")
