"""The Square API routes, on the paths the official `squareup` SDK calls.

GET  /v2/loyalty/programs                        {"programs": [program]} (deprecated list)
GET  /v2/loyalty/programs/{id | main}            {"program"}
POST /v2/loyalty/accounts/search                 {"loyalty_accounts", "cursor"?}
POST /v2/loyalty/accounts                        create (idempotency_key required)
GET  /v2/loyalty/accounts/{id}                   {"loyalty_account"}
POST /v2/loyalty/accounts/{id}/adjust            {"event"} (idempotency_key required)
POST /v2/loyalty/events/search                   {"events", "cursor"?}
POST /v2/customers/search                        {"customers", "cursor"?}
POST /v2/customers/bulk-retrieve                 {"responses": {id: {"customer"} | {"errors"}}}
POST /v2/customers                               create (idempotency_key optional)
GET  /v2/customers/{id}                          {"customer"}
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.routing import Route

from connectors.square.emulator import search
from connectors.square.emulator.errors import bad_request
from connectors.square.emulator.gate import read_json
from connectors.square.emulator.loyalty import API, LoyaltyState, require_key
from connectors.square.emulator.wire import Json, e164, fingerprint, integer, obj, text
from syncd.sandbox.gate import Gate

PROGRAMS = "/v2/loyalty/programs"
ACCOUNTS = "/v2/loyalty/accounts"
EVENTS = "/v2/loyalty/events"
CUSTOMERS = "/v2/customers"


def idempotent(
    state: LoyaltyState,
    scope: str,
    key: str,
    request: Request,
    body: Json,
    apply: Callable[[], Json],
) -> Json:
    """Apply once per (endpoint, key); a repeat gets the first answer, another body a 400."""
    request_print = fingerprint({"path": request.url.path, "body": body})
    with state.lock:
        replay = state.idempotency.replay(scope, key, request_print)
        if replay is not None:
            return replay
        answer = apply()
        state.idempotency.remember(scope, key, request_print, answer)
        return answer


def build_routes(state: LoyaltyState, gate: Gate) -> list[Route]:
    """Every API route of the emulator, each wrapped by the gate."""

    async def list_programs(request: Request) -> Json:
        with state.lock:
            return {"programs": [state.program_wire()]}

    async def get_program(request: Request) -> Json:
        with state.lock:
            return {"program": state.program_by(request.path_params["program_id"])}

    async def search_accounts(request: Request) -> Json:
        return search.search_accounts(state, await read_json(request))

    async def get_account(request: Request) -> Json:
        with state.lock:
            account = state.account(request.path_params["account_id"])
            return {"loyalty_account": state.account_wire(account)}

    async def create_account(request: Request) -> Json:
        body = await read_json(request)
        key = require_key(body)
        account = obj(body.get("loyalty_account"), "loyalty_account")
        program_id = text(account.get("program_id"), "loyalty_account.program_id", required=True)
        mapping = obj(account.get("mapping"), "loyalty_account.mapping")
        phone = e164(mapping.get("phone_number"), "loyalty_account.mapping.phone_number")
        enrolled = text(account.get("enrolled_at"), "loyalty_account.enrolled_at")

        def apply() -> Json:
            created = state.create_account(program_id or "", phone, enrolled_at=enrolled)
            return {"loyalty_account": state.account_wire(created)}

        return idempotent(state, f"POST {ACCOUNTS}", key, request, body, apply)

    async def adjust(request: Request) -> Json:
        body = await read_json(request)
        key = require_key(body)
        adjust_points = obj(body.get("adjust_points"), "adjust_points")
        if not adjust_points:
            raise bad_request(
                "Field `adjust_points` is required.",
                code="MISSING_REQUIRED_PARAMETER",
                field="adjust_points",
            )
        points = integer(adjust_points.get("points"), "adjust_points.points", required=True)
        reason = text(adjust_points.get("reason"), "adjust_points.reason")
        allow = body.get("allow_negative_balance", False)
        if not isinstance(allow, bool):
            raise bad_request(
                "Expected a boolean.", code="EXPECTED_BOOLEAN", field="allow_negative_balance"
            )
        account_id = request.path_params["account_id"]

        def apply() -> Json:
            event = state.adjust(account_id, points or 0, reason, allow_negative=allow, source=API)
            return {"event": state.event_wire(event)}

        return idempotent(state, f"POST {ACCOUNTS}/{{id}}/adjust", key, request, body, apply)

    async def search_events(request: Request) -> Json:
        return search.search_events(state, await read_json(request))

    async def search_customers(request: Request) -> Json:
        body = await read_json(request)
        with state.lock:
            return state.customers.search(body)

    async def bulk_retrieve(request: Request) -> Json:
        body = await read_json(request)
        with state.lock:
            return state.customers.bulk_retrieve(body)

    async def create_customer(request: Request) -> Json:
        body = await read_json(request)
        key = text(body.get("idempotency_key"), "idempotency_key", max_length=128)
        fields = {k: v for k, v in body.items() if k != "idempotency_key"}

        def apply() -> Json:
            customer = state.customers.create(fields)
            return {"customer": state.customers.wire(customer)}

        if not key:
            with state.lock:
                return apply()
        return idempotent(state, f"POST {CUSTOMERS}", key, request, body, apply)

    async def get_customer(request: Request) -> Json:
        with state.lock:
            customer = state.customers.get(request.path_params["customer_id"])
            return {"customer": state.customers.wire(customer)}

    return [
        gate.route("GET", PROGRAMS, list_programs),
        gate.route("GET", f"{PROGRAMS}/{{program_id}}", get_program),
        gate.route("POST", f"{ACCOUNTS}/search", search_accounts),
        gate.route("POST", ACCOUNTS, create_account),
        gate.route("GET", f"{ACCOUNTS}/{{account_id}}", get_account),
        gate.route("POST", f"{ACCOUNTS}/{{account_id}}/adjust", adjust),
        gate.route("POST", f"{EVENTS}/search", search_events),
        gate.route("POST", f"{CUSTOMERS}/search", search_customers),
        gate.route("POST", f"{CUSTOMERS}/bulk-retrieve", bulk_retrieve),
        gate.route("POST", CUSTOMERS, create_customer),
        gate.route("GET", f"{CUSTOMERS}/{{customer_id}}", get_customer),
    ]
