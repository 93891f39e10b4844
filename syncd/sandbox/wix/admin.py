"""Sandbox admin routes: no auth, no rate limit, no faults. JSON in, JSON out.

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

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from syncd.sandbox import knobs as knob_tools
from syncd.sandbox.wix import program
from syncd.sandbox.wix.errors import WixApiError, invalid
from syncd.sandbox.wix.gate import error_response, read_json
from syncd.sandbox.wix.site import recalculate, site_activity
from syncd.sandbox.wix.wire import as_int, optional_str

if TYPE_CHECKING:
    from syncd.sandbox.wix import WixEmulator

AdminHandler = Callable[[Request], Awaitable[Any]]


def build_admin_routes(emulator: WixEmulator) -> list[Route]:
    """The `/_sandbox/...` routes of one emulator."""
    state = emulator.state
    hooks = emulator.webhooks

    async def get_knobs(request: Request) -> Any:
        return knob_tools.dump(emulator.knobs) | {"seed": emulator.seed}

    async def patch_knobs(request: Request) -> Any:
        body = await read_json(request)
        seed = body.pop("seed", None)
        try:
            knob_tools.patch(emulator.knobs, body)
        except knob_tools.KnobError as exc:
            raise invalid("knobs", str(exc)) from exc
        if seed is not None:
            emulator.reseed(as_int(seed, "seed"))
        return await get_knobs(request)

    async def reset(request: Request) -> Any:
        body = await read_json(request)
        emulator.reset(knobs=body.get("knobs") is True)
        return {}

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

    async def stats(request: Request) -> Any:
        return emulator.stats.dump()

    async def put_webhooks(request: Request) -> Any:
        body = await read_json(request)
        hooks.url = optional_str(body.get("url"), "url")
        return {"url": hooks.url}

    async def public_key(request: Request) -> Response:
        return PlainTextResponse(emulator.public_key_pem)

    async def flush(request: Request) -> Any:
        attempts = await hooks.flush()
        return {"attempts": [asdict(a) | {"ok": a.ok} for a in attempts]}

    async def log(request: Request) -> Any:
        return hooks.log() | {"events": [e.summary() for e in list(hooks.events)]}

    def route(method: str, path: str, handler: AdminHandler) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                result = await handler(request)
            except WixApiError as error:
                return error_response(error)
            return result if isinstance(result, Response) else JSONResponse(result)

        return Route(f"/_sandbox/{path}", endpoint, methods=[method])

    return [
        route("GET", "knobs", get_knobs),
        route("PATCH", "knobs", patch_knobs),
        route("POST", "reset", reset),
        route("POST", "seed", seed),
        route("PUT", "program", put_program),
        route("POST", "activity", activity),
        route("POST", "recalculate", recalculation),
        route("GET", "accounts", accounts),
        route("GET", "transactions", transactions),
        route("GET", "contacts", contacts),
        route("GET", "stats", stats),
        route("PUT", "webhooks", put_webhooks),
        route("GET", "webhooks/public-key", public_key),
        route("POST", "webhooks/flush", flush),
        route("GET", "webhooks/log", log),
    ]
