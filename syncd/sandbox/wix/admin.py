"""The Wix emulator's admin routes: the shared ones (`syncd.sandbox.admin`) and Wix's own.
No auth, no rate limit, no faults. JSON in, JSON out.

GET   /_sandbox/knobs                 every knob (see `syncd.sandbox.wix`), plus "seed"
PATCH /_sandbox/knobs                 partial update, nested: {"faults": {"error_rate": 0.2}}
                                      ({"seed": n} re-seeds every random generator)
POST  /_sandbox/reset                 empty site: program DRAFT, no contacts, accounts,
                                      ledger, events, tokens or stats (knobs are kept;
                                      {"knobs": true} restores their defaults too)
POST  /_sandbox/seed                  {"count": n} or {"accounts": [{email, name, phone,
                                      countryCode, balance}]}, "activate": bool
                                      -> {"accounts": [...]} (no webhooks)
PUT   /_sandbox/program               {"status": "DRAFT"|"ACTIVE"|"PAUSED"} (program_updated)
POST  /_sandbox/activity              {"accountId", "kind": "redeem"|"earn"|"expire"|"adjust",
                                      "amount", "description"?}: what the shop, its customers
                                      or its owner do on the site; writes the REDEEM / EARN /
                                      EXPIRE / ADJUST transaction and fires the webhooks
                                      -> {"account", "transactionId"}
POST  /_sandbox/recalculate           account_updated for every account with nothing changed,
                                      like Wix's ~15-minute recalculation -> {"accounts": n}
GET   /_sandbox/accounts              {"accounts": [...]} every account
GET   /_sandbox/transactions          {"transactions": [...]} the whole ledger
GET   /_sandbox/contacts              {"contacts": [...]}
GET   /_sandbox/stats                 requests per route, statuses, 429s, injected faults
PUT   /_sandbox/webhooks              {"url": "http://..." | null}
GET   /_sandbox/webhooks/public-key   the PEM (text/plain)
POST  /_sandbox/webhooks/flush        send everything queued now -> {"attempts": [...]}
GET   /_sandbox/webhooks/log          {"url", "events", "pending", "dropped", "attempts"}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from syncd.sandbox.admin import AdminDialect
from syncd.sandbox.admin import build_admin_routes as shared_admin_routes
from syncd.sandbox.wix import program
from syncd.sandbox.wix.errors import invalid
from syncd.sandbox.wix.gate import read_json
from syncd.sandbox.wix.site import recalculate, site_activity
from syncd.sandbox.wix.wire import as_int, optional_str

if TYPE_CHECKING:
    from syncd.sandbox.wix import WixEmulator

DIALECT = AdminDialect(
    read_json=read_json,
    bad_knobs=lambda message: invalid("knobs", message),
    read_int=as_int,
)


def build_admin_routes(emulator: WixEmulator) -> list[Route]:
    """The `/_sandbox/...` routes of one emulator."""
    state = emulator.state
    hooks = emulator.webhooks

    async def seed(request: Request) -> Any:
        body = await read_json(request)
        specs = body.get("accounts")
        if specs is None:
            specs = as_int(body.get("count", 10), "count")
        elif not isinstance(specs, list):
            raise invalid("accounts", "must be a list")
        accounts = emulator.seed_accounts(specs)
        if body.get("activate"):
            emulator.activate()
        return {"accounts": accounts}

    async def put_program(request: Request) -> Any:
        body = await read_json(request)
        status = optional_str(body.get("status"), "status") or ""
        return {"loyaltyProgram": program.set_status(state, status, origin="site")}

    async def activity(request: Request) -> Any:
        body = await read_json(request)
        account, tx_id = site_activity(
            state,
            optional_str(body.get("accountId"), "accountId") or "",
            optional_str(body.get("kind"), "kind") or "",
            as_int(body.get("amount", 0), "amount"),
            optional_str(body.get("description"), "description"),
        )
        return {"account": account, "transactionId": tx_id}

    async def recalculation(request: Request) -> Any:
        return {"accounts": recalculate(state)}

    async def accounts(request: Request) -> Any:
        return {"accounts": state.all_accounts()}

    async def transactions(request: Request) -> Any:
        return {"transactions": state.all_transactions()}

    async def contacts(request: Request) -> Any:
        with state.lock:
            return {"contacts": state.contacts.all()}

    async def put_webhooks(request: Request) -> Any:
        body = await read_json(request)
        hooks.url = optional_str(body.get("url"), "url")
        return {"url": hooks.url}

    async def public_key(request: Request) -> Response:
        return PlainTextResponse(emulator.public_key_pem)

    return shared_admin_routes(
        emulator,
        DIALECT,
        [
            ("POST", "seed", seed),
            ("PUT", "program", put_program),
            ("POST", "activity", activity),
            ("POST", "recalculate", recalculation),
            ("GET", "accounts", accounts),
            ("GET", "transactions", transactions),
            ("GET", "contacts", contacts),
            ("PUT", "webhooks", put_webhooks),
            ("GET", "webhooks/public-key", public_key),
        ],
    )
