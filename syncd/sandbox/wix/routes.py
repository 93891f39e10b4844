"""The Wix REST routes, on the real paths the JS SDK calls (each package's `build/cjs/meta.js`).

/loyalty-accounts/v1/accounts                     POST create, GET list (deprecated)
/loyalty-accounts/v1/accounts/fetch-by            GET ?contactId= | ?memberId=
/loyalty-accounts/v1/accounts/my-account          GET (members only: 403 for apps)
/loyalty-accounts/v1/accounts/program-totals      GET
/loyalty-accounts/v1/accounts/query|search|count  POST
/loyalty-accounts/v1/accounts/bulk-adjust         POST (applied at once, no revision check)
/loyalty-accounts/v1/accounts/{id}                GET
/loyalty-accounts/v1/accounts/{id}/adjust-points  POST
/loyalty-accounts/v1/accounts/{id}/earn-points    POST
/loyalty-transactions/v1/loyalty-transactions/{id} GET, /query POST
/loyalty-programs/v1/program                      GET, PATCH; /activate, /pause POST;
                                                  /premium-features GET;
                                                  /points-expiration/enable|disable POST
/loyalty-programs/v1/bulk/programs                GET
/contacts/v4/contacts                             POST; /{id} GET; /query POST
/oauth2/token                                     POST
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from syncd.sandbox.gate import Gate, Handler
from syncd.sandbox.wix import program, query
from syncd.sandbox.wix.auth import Gatekeeper
from syncd.sandbox.wix.errors import WixApiError, invalid
from syncd.sandbox.wix.gate import read_json
from syncd.sandbox.wix.knobs import WixKnobs
from syncd.sandbox.wix.state import WixState
from syncd.sandbox.wix.wire import as_int, optional_str

ACCOUNTS = "/loyalty-accounts/v1/accounts"
TRANSACTIONS = "/loyalty-transactions/v1/loyalty-transactions"
PROGRAM = "/loyalty-programs/v1/program"
CONTACTS = "/contacts/v4/contacts"
BY_CREATION = [{"fieldName": "createdDate", "order": "ASC"}]


def _prefixed(error: query.QueryError, prefix: str) -> WixApiError:
    return invalid(f"{prefix}.{error.field}", error.description, error.rule)


def _query_errors_refused(handler: Handler) -> Handler:
    """The handler with any `QueryError` it lets through answered as Wix's 400."""

    async def refusing(request: Request) -> Any:
        try:
            return await handler(request)
        except query.QueryError as exc:
            raise invalid(exc.field, exc.description, exc.rule) from exc

    return refusing


def build_routes(
    state: WixState, gate: Gate, gatekeeper: Gatekeeper, knobs: WixKnobs
) -> list[Route]:
    """Every API route of the emulator, each wrapped by the gate."""

    async def create_account(request: Request) -> Any:
        body = await read_json(request)
        return {"account": state.create_account(body.get("contactId"))}

    async def list_accounts(request: Request) -> Any:
        contact_ids = request.query_params.getlist("contactIds")
        limit = request.query_params.get("cursorPaging.limit")
        paging = {"limit": limit, "cursor": request.query_params.get("cursorPaging.cursor")}
        filter_ = {"contactId": {"$in": contact_ids}} if contact_ids else {}
        if len(contact_ids) > 50:
            raise invalid("contactIds", "at most 50", "MAX_SIZE")
        with state.lock:
            page, meta = query.cursor_page(
                state.account_records(),
                {"filter": filter_, "cursorPaging": paging},
                default_sort=BY_CREATION,
            )
        meta = {
            "count": meta["count"],
            "offset": 0,
            "total": None,
            "tooManyToCount": False,
            "cursors": meta["cursors"],
        }
        return {"accounts": page, "pagingMetadata": meta}

    async def get_account(request: Request) -> Any:
        with state.lock:
            return {"account": state.account_wire(state.account(request.path_params["id"]))}

    async def fetch_by(request: Request) -> Any:
        params = request.query_params
        with state.lock:
            found = state.account_by(
                contact_id=params.get("contactId"), member_id=params.get("memberId")
            )
            return {"account": state.account_wire(found)}

    async def my_account(request: Request) -> Any:
        raise WixApiError(403, "Only a logged-in member has an own account", code="FORBIDDEN")

    async def program_totals(request: Request) -> Any:
        return state.program_totals()

    async def query_accounts(request: Request) -> Any:
        body = await read_json(request)
        try:
            with state.lock:
                page, meta = query.cursor_page(
                    state.account_records(),
                    body.get("query") or {},
                    max_sort=5,
                    default_sort=BY_CREATION,
                )
        except query.QueryError as exc:
            raise _prefixed(exc, "query") from exc
        return {knobs.query_list_key: page, "pagingMetadata": meta}

    async def search_accounts(request: Request) -> Any:
        body = await read_json(request)
        try:
            with state.lock:
                page, meta = query.cursor_page(
                    state.account_records(),
                    body.get("search") or {},
                    max_sort=10,
                    default_sort=BY_CREATION,
                )
        except query.QueryError as exc:
            raise _prefixed(exc, "search") from exc
        return {"accounts": page, "pagingMetadata": meta}

    async def count_accounts(request: Request) -> Any:
        body = await read_json(request)
        found = query.select(state.all_accounts(), body.get("filter"), None, body.get("search"))
        return {"count": len(found)}

    async def bulk_adjust(request: Request) -> Any:
        body = await read_json(request)
        search = body.get("search") or {}
        targets = query.select(
            state.all_accounts(), search.get("filter"), None, search.get("search")
        )
        balance = body.get("balance")
        amount = body.get("amount")
        for account in targets:
            state.adjust(
                account["id"],
                amount=None if amount is None else as_int(amount, "amount"),
                balance=None if balance is None else as_int(balance, "balance"),
                description=None,
                revision=int(account["revision"]),  # bulk adjust does no revision check
            )
        return {"asyncJobId": state.new_id()}

    async def adjust_points(request: Request) -> Any:
        body = await read_json(request)
        balance, amount = body.get("balance"), body.get("amount")
        revision = body.get("revision")
        account, tx_id = state.adjust(
            request.path_params["id"],
            balance=None if balance is None else as_int(balance, "balance"),
            amount=None if amount is None or balance is not None else as_int(amount, "amount"),
            description=optional_str(body.get("description"), "description"),
            revision=None if revision in (None, "") else as_int(revision, "revision"),
        )
        return {"account": account, "transactionId": tx_id}

    async def earn_points(request: Request) -> Any:
        body = await read_json(request)
        account, tx_id = state.earn(
            request.path_params["id"],
            amount=as_int(body.get("amount", 0), "amount"),
            app_id=optional_str(body.get("appId"), "appId") or "",
            idempotency_key=optional_str(body.get("idempotencyKey"), "idempotencyKey") or "",
            description=optional_str(body.get("description"), "description"),
            activity_type=optional_str(body.get("activityType"), "activityType"),
            order_id=optional_str(body.get("orderId"), "orderId"),
        )
        return {"account": account, "transactionId": tx_id}

    async def get_transaction(request: Request) -> Any:
        with state.lock:
            return {"loyaltyTransaction": state.transaction(request.path_params["id"])}

    async def query_transactions(request: Request) -> Any:
        body = await read_json(request)
        try:
            with state.lock:
                page, meta = query.cursor_page(
                    state.transaction_records(),
                    body.get("query") or {},
                    max_sort=5,
                    default_sort=BY_CREATION,
                )
        except query.QueryError as exc:
            raise _prefixed(exc, "query") from exc
        return {"loyaltyTransactions": page, "pagingMetadata": meta}

    async def get_program(request: Request) -> Any:
        with state.lock:
            return {"loyaltyProgram": state.program.to_wire()}

    async def patch_program(request: Request) -> Any:
        body = await read_json(request)
        return {"loyaltyProgram": program.update(state, body.get("loyaltyProgram"))}

    async def activate(request: Request) -> Any:
        return {"loyaltyProgram": program.set_status(state, "ACTIVE")}

    async def pause(request: Request) -> Any:
        return {"loyaltyProgram": program.pause(state)}

    async def premium_features(request: Request) -> Any:
        return {"loyaltyProgram": False, "tiers": False, "pointsExpiration": False}

    async def enable_expiration(request: Request) -> Any:
        return {"loyaltyProgram": program.set_points_expiration(state, True)}

    async def disable_expiration(request: Request) -> Any:
        return {"loyaltyProgram": program.set_points_expiration(state, False)}

    async def bulk_programs(request: Request) -> Any:
        with state.lock:
            program = state.program.to_wire()
        return {
            "programInSites": [
                {"metaSiteId": gatekeeper.credentials.site_id, "loyaltyProgram": program}
            ]
        }

    async def create_contact(request: Request) -> Any:
        body = await read_json(request)
        allow = body.get("allowDuplicates", False)
        with state.lock:
            return {
                "contact": state.contacts.create(body.get("info"), allow_duplicates=allow is True)
            }

    async def get_contact(request: Request) -> Any:
        with state.lock:
            return {
                "contact": state.contacts.get(request.path_params["id"]),
                "responseType": "REGULAR",
            }

    async def query_contacts(request: Request) -> Any:
        body = await read_json(request)
        text = optional_str(body.get("search"), "search")
        with state.lock:
            page, meta = query.offset_page(
                state.contacts.records(),
                body.get("query") or {},
                max_sort=1,
                default_sort=BY_CREATION,
                search={"expression": text} if text else None,
            )
        return {"contacts": page, "pagingMetadata": meta}

    async def oauth_token(request: Request) -> Any:
        body = await read_json(request)
        return gatekeeper.issue_token(body, knobs.token_ttl_seconds)

    def route(method: str, path: str, handler: Handler, *, authenticated: bool = True) -> Route:
        return gate.route(method, path, _query_errors_refused(handler), authenticated=authenticated)

    return [
        route("POST", ACCOUNTS, create_account),
        route("GET", ACCOUNTS, list_accounts),
        route("GET", f"{ACCOUNTS}/fetch-by", fetch_by),
        route("GET", f"{ACCOUNTS}/my-account", my_account),
        route("GET", f"{ACCOUNTS}/program-totals", program_totals),
        route("POST", f"{ACCOUNTS}/query", query_accounts),
        route("POST", f"{ACCOUNTS}/search", search_accounts),
        route("POST", f"{ACCOUNTS}/count", count_accounts),
        route("POST", f"{ACCOUNTS}/bulk-adjust", bulk_adjust),
        route("GET", f"{ACCOUNTS}/{{id}}", get_account),
        route("POST", f"{ACCOUNTS}/{{id}}/adjust-points", adjust_points),
        route("POST", f"{ACCOUNTS}/{{id}}/earn-points", earn_points),
        route("POST", f"{TRANSACTIONS}/query", query_transactions),
        route("GET", f"{TRANSACTIONS}/{{id}}", get_transaction),
        route("GET", PROGRAM, get_program),
        route("PATCH", PROGRAM, patch_program),
        route("POST", f"{PROGRAM}/activate", activate),
        route("POST", f"{PROGRAM}/pause", pause),
        route("GET", f"{PROGRAM}/premium-features", premium_features),
        route("POST", f"{PROGRAM}/points-expiration/enable", enable_expiration),
        route("POST", f"{PROGRAM}/points-expiration/disable", disable_expiration),
        route("GET", "/loyalty-programs/v1/bulk/programs", bulk_programs),
        route("POST", CONTACTS, create_contact),
        route("POST", f"{CONTACTS}/query", query_contacts),
        route("GET", f"{CONTACTS}/{{id}}", get_contact),
        route("POST", "/oauth2/token", oauth_token, authenticated=False),
    ]
