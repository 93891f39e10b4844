"""The Square emulator's admin routes: the shared ones (`syncd.sandbox.admin`) and Square's
own. No auth, no rate limit, no faults. JSON in, JSON out.

GET   /_sandbox/knobs               every knob (see `connectors.square.emulator`), plus "seed"
PATCH /_sandbox/knobs               partial update, nested: {"faults": {"error_rate": 0.2}}
                                    ({"seed": n} re-seeds every random generator)
POST  /_sandbox/reset               the seller as first made (same seed, same program id):
                                    no customers, accounts, events, keys, webhooks or stats
                                    ({"knobs": true} also restores the default knobs)
POST  /_sandbox/seed                {"count": n} or {"accounts": [{email, phone, name,
                                    balance}]} -> {"loyalty_accounts": [...]} (no webhooks;
                                    a negative balance is allowed)
POST  /_sandbox/customers           {email, phone, name} -> {"customer"}: a customer with no
                                    loyalty account, searchable at once
POST  /_sandbox/activity            {"account_id", "kind": "sale"|"redeem"|"adjust"|"expire",
                                    "points", "reason"?}: what happens at the till or in the
                                    dashboard (source SQUARE, webhooks fire)
                                    -> {"loyalty_account", "event_ids"}
GET   /_sandbox/program             {"program"}
GET   /_sandbox/accounts            {"loyalty_accounts": [...]} every account, oldest first
GET   /_sandbox/events              {"events": [...]} the whole ledger, oldest first
GET   /_sandbox/customers           {"customers": [...]} (search lag ignored)
GET   /_sandbox/stats               requests per route, statuses, 429s, injected faults,
                                    Square-Version values seen, and applied_writes /
                                    replayed_writes per idempotency key
PUT   /_sandbox/webhooks            {"url", "notification_url"?, "signature_key"?}
POST  /_sandbox/webhooks/flush      send everything queued now -> {"attempts": [...]}
GET   /_sandbox/webhooks/log        {"url", "notification_url", "events", "pending",
                                    "dropped", "attempts"}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.routing import Route

from connectors.square.emulator.errors import bad_request
from connectors.square.emulator.gate import read_json
from connectors.square.emulator.wire import Json, integer, text
from syncd.sandbox.admin import AdminDialect
from syncd.sandbox.admin import build_admin_routes as shared_admin_routes

if TYPE_CHECKING:
    from connectors.square.emulator import SquareEmulator

DIALECT = AdminDialect(
    read_json=read_json,
    bad_knobs=lambda message: bad_request(message, field="knobs"),
    read_int=lambda value, field: integer(value, field) or 0,
)


def build_admin_routes(emulator: SquareEmulator) -> list[Route]:
    """The `/_sandbox/...` routes of one emulator."""
    hooks = emulator.webhooks

    async def seed(request: Request) -> Json:
        body = await read_json(request)
        specs: Any = body.get("accounts")
        if specs is None:
            specs = integer(body.get("count", 10), "count") or 0
        elif not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
            raise bad_request("`accounts` must be a list of objects.", field="accounts")
        return {"loyalty_accounts": emulator.seed_accounts(specs)}

    async def add_customer(request: Request) -> Json:
        body = await read_json(request)
        customer = emulator.seed_customer(
            email=text(body.get("email"), "email"),
            phone=text(body.get("phone"), "phone"),
            name=text(body.get("name"), "name"),
        )
        return {"customer": customer}

    async def activity(request: Request) -> Json:
        body = await read_json(request)
        result = emulator.activity(
            text(body.get("account_id"), "account_id", required=True) or "",
            text(body.get("kind"), "kind", required=True) or "",
            integer(body.get("points"), "points", required=True) or 0,
            reason=text(body.get("reason"), "reason"),
        )
        return result.to_wire()

    async def program(request: Request) -> Json:
        with emulator.state.lock:
            return {"program": emulator.state.program_wire()}

    async def accounts(request: Request) -> Json:
        return {"loyalty_accounts": emulator.accounts()}

    async def events(request: Request) -> Json:
        return {"events": emulator.events()}

    async def customers(request: Request) -> Json:
        return {"customers": emulator.customers()}

    async def put_webhooks(request: Request) -> Json:
        body = await read_json(request)
        hooks.url = text(body.get("url"), "url")
        if "notification_url" in body:
            hooks.notification_url = text(body.get("notification_url"), "notification_url")
        key = text(body.get("signature_key"), "signature_key")
        if key:
            hooks.signature_key = key
        return {"url": hooks.url, "notification_url": hooks.signed_url}

    return shared_admin_routes(
        emulator,
        DIALECT,
        [
            ("POST", "seed", seed),
            ("POST", "customers", add_customer),
            ("POST", "activity", activity),
            ("GET", "program", program),
            ("GET", "accounts", accounts),
            ("GET", "events", events),
            ("GET", "customers", customers),
            ("PUT", "webhooks", put_webhooks),
        ],
    )
