"""The Square emulator driven by Square's official Python SDK (`squareup`, `from square import
Square`) over a real localhost port, for every route the `square` connector uses.

Each answer is read twice: as the SDK's client returns it, and validated strictly against the
SDK's pydantic model (the SDK itself only constructs, without validation). Every nested model
must have no fields the SDK does not know, and every enum-typed value must be one of the SDK's
literals. Webhook signatures are checked with the SDK's own `verify_signature`, and the bodies
parsed with its webhook event models. If the SDK and the emulator disagree, the emulator is
wrong.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from pydantic import BaseModel
from square import Square
from square.core.api_error import ApiError
from square.core.http_response import HttpResponse
from square.types.error import Error
from square.types.error_category import ErrorCategory
from square.types.error_code import ErrorCode
from square.types.loyalty_account_created_event import LoyaltyAccountCreatedEvent
from square.types.loyalty_account_updated_event import LoyaltyAccountUpdatedEvent
from square.types.loyalty_event_created_event import LoyaltyEventCreatedEvent
from square.types.loyalty_event_source import LoyaltyEventSource
from square.types.loyalty_event_type import LoyaltyEventType
from square.types.loyalty_program_accrual_rule_type import LoyaltyProgramAccrualRuleType
from square.types.loyalty_program_status import LoyaltyProgramStatus
from square.utils.webhooks_helper import verify_signature
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.square.emulator import SquareEmulator
from connectors.square.emulator.errors import CODES
from syncd.sandbox.server import RunningServer, serve_in_thread

TOKEN = "conformance-token"
SIGNATURE_KEY = "conformance-signature-key"
NOTIFICATION_URL = "https://syncd.example.com/webhooks/square"
VERSION = "2025-08-20"
T = typing.TypeVar("T", bound=BaseModel)


def literals(alias: Any) -> set[str]:
    """The string values of an SDK enum alias (`Union[Literal[...], Any]`)."""
    return set(typing.get_args(typing.get_args(alias)[0]))


def strict(response: HttpResponse[T]) -> T:
    """The SDK's parse of an answer, checked against a strict validation of the raw JSON."""
    data = response.data
    validated = type(data).model_validate(response._response.json())
    assert validated == data
    assert_known_fields(validated)
    return validated


def assert_known_fields(model: BaseModel, where: str = "") -> None:
    """No field anywhere in `model` that the SDK's models do not declare."""
    extra = model.model_extra or {}
    assert not extra, f"{where or type(model).__name__}: fields unknown to the SDK: {sorted(extra)}"
    for name in type(model).model_fields:
        value = getattr(model, name)
        items = (
            value
            if isinstance(value, list)
            else list(value.values())
            if isinstance(value, dict)
            else [value]
        )
        for item in items:
            if isinstance(item, BaseModel):
                assert_known_fields(item, f"{where}.{name}")


@pytest.fixture
def emulator() -> Iterator[SquareEmulator]:
    emu = SquareEmulator(access_token=TOKEN, seed=3, signature_key=SIGNATURE_KEY)
    emu.seed_accounts(45)
    yield emu


@pytest.fixture
def served(emulator: SquareEmulator) -> Iterator[RunningServer]:
    with serve_in_thread(emulator.app) as server:
        yield server


@pytest.fixture
def sdk(served: RunningServer) -> Square:
    return Square(token=TOKEN, base_url=served.url, version=VERSION)


def test_program(sdk: Square, emulator: SquareEmulator) -> None:
    """GET /v2/loyalty/programs/main parses into LoyaltyProgram with id and enums."""
    program = strict(sdk.loyalty.programs.with_raw_response.get(program_id="main")).program
    assert program is not None and program.id == emulator.program_id
    assert program.status in literals(LoyaltyProgramStatus)
    assert program.terminology is not None and program.reward_tiers
    assert {r.accrual_type for r in program.accrual_rules or []} <= literals(
        LoyaltyProgramAccrualRuleType
    )
    assert emulator.stats.dump()["square_versions"] == {VERSION: 1}


def test_accounts_search_pages_and_filters(sdk: Square, emulator: SquareEmulator) -> None:
    """POST /v2/loyalty/accounts/search: paging by cursor, by phone mapping, by customer ids."""
    raw = sdk.loyalty.accounts.with_raw_response
    first = strict(raw.search(limit=30))
    assert first.loyalty_accounts and len(first.loyalty_accounts) == 30 and first.cursor
    rest = strict(raw.search(limit=30, cursor=first.cursor))
    ids = [a.id for a in first.loyalty_accounts + (rest.loyalty_accounts or [])]
    assert ids == [a["id"] for a in emulator.accounts()] and rest.cursor is None
    account = first.loyalty_accounts[3]
    assert account.mapping is not None and account.mapping.phone_number == "+14155550004"
    assert isinstance(account.balance, int) and account.customer_id and account.updated_at
    by_phone = strict(raw.search(query={"mappings": [{"phone_number": "+14155550004"}]}))
    assert [a.id for a in by_phone.loyalty_accounts or []] == [account.id]
    by_customer = strict(raw.search(query={"customer_ids": [account.customer_id]}))
    assert [a.id for a in by_customer.loyalty_accounts or []] == [account.id]
    assert strict(raw.search(query={"customer_ids": ["NONE"]})).loyalty_accounts is None


def test_account_get_create_and_adjust(sdk: Square, emulator: SquareEmulator) -> None:
    """Get, create (with its idempotent replay) and adjust parse into the SDK's models."""
    raw = sdk.loyalty.accounts.with_raw_response
    mapping = {"phone_number": "+14155557777"}
    body = {"program_id": emulator.program_id, "mapping": mapping}
    created = strict(raw.create(loyalty_account=body, idempotency_key="conf-create"))
    replay = strict(raw.create(loyalty_account=body, idempotency_key="conf-create"))
    account = created.loyalty_account
    assert account is not None and replay == created and account.balance == 0
    fetched = strict(raw.get(account.id or "")).loyalty_account
    assert fetched == account
    adjusted = strict(
        raw.adjust(
            account.id or "",
            idempotency_key="conf-adjust",
            adjust_points={"points": 15, "reason": "syncd:conf-adjust from wix"},
            allow_negative_balance=False,
        )
    ).event
    assert adjusted is not None and adjusted.type == "ADJUST_POINTS"
    assert adjusted.source == "LOYALTY_API" and adjusted.loyalty_account_id == account.id
    assert adjusted.adjust_points is not None and adjusted.adjust_points.points == 15
    assert adjusted.adjust_points.reason == "syncd:conf-adjust from wix"
    assert adjusted.created_at


def test_events_search(sdk: Square, emulator: SquareEmulator) -> None:
    """POST /v2/loyalty/events/search: filters, newest first, 30 a page, cursor; every type
    and source is one of the SDK's."""
    account = emulator.accounts()[2]["id"]
    for kind, points in (("sale", 20), ("redeem", 10), ("adjust", -5), ("expire", 1)):
        emulator.activity(account, kind, points)
    for i in range(30):
        emulator.activity(emulator.accounts()[4]["id"], "sale", i + 1)
    query = {"filter": {"loyalty_account_filter": {"loyalty_account_id": account}}}
    events = strict(sdk.loyalty.with_raw_response.search_events(query=query, limit=30)).events or []
    assert [e.type for e in events] == [
        "EXPIRE_POINTS",
        "ADJUST_POINTS",
        "REDEEM_REWARD",
        "CREATE_REWARD",
        "ACCUMULATE_POINTS",
        "ADJUST_POINTS",
    ]
    assert {e.source for e in events} <= literals(LoyaltyEventSource)
    assert {e.type for e in events} <= literals(LoyaltyEventType)
    assert events[3].create_reward is not None and events[3].create_reward.points == -10
    assert events[4].accumulate_points is not None and events[4].accumulate_points.points == 20
    typed = {
        "filter": {
            "type_filter": {"types": ["ACCUMULATE_POINTS"]},
            "date_time_filter": {"created_at": {"start_at": "2000-01-01T00:00:00Z"}},
        }
    }
    page = strict(sdk.loyalty.with_raw_response.search_events(query=typed, limit=30))
    assert len(page.events or []) == 30 and page.cursor
    more = strict(sdk.loyalty.with_raw_response.search_events(query=typed, cursor=page.cursor))
    assert len(more.events or []) == 1 and more.cursor is None


def test_customers_search_bulk_retrieve_create_get(sdk: Square, emulator: SquareEmulator) -> None:
    """Customers search (email exact, paging), bulk retrieve, create and get parse."""
    raw = sdk.customers.with_raw_response
    found = strict(
        raw.search(
            query={"filter": {"email_address": {"exact": "CUSTOMER3@example.com"}}}, limit=100
        )
    )
    customer = (found.customers or [None])[0]
    assert customer is not None and customer.email_address == "customer3@example.com"
    phone = {"filter": {"phone_number": {"exact": "+14155550003"}}}
    assert [c.id for c in strict(raw.search(query=phone)).customers or []] == [customer.id]
    page = strict(raw.search(limit=20))
    assert len(page.customers or []) == 20 and page.cursor
    bulk = strict(raw.bulk_retrieve_customers(customer_ids=[customer.id or "", "MISSING"]))
    responses = bulk.responses or {}
    answer, missing = responses[customer.id or ""], responses["MISSING"]
    assert answer.customer is not None and answer.customer.id == customer.id
    assert missing.customer is None and missing.errors and missing.errors[0].code == "NOT_FOUND"
    created = strict(
        raw.create(
            idempotency_key="conf-cust",
            email_address="new@example.com",
            phone_number="+14155556666",
            given_name="New",
            family_name="Person",
        )
    ).customer
    assert created is not None and created.email_address == "new@example.com"
    assert strict(raw.get(created.id or "")).customer == created


def test_errors_parse_as_sdk_errors(
    sdk: Square, emulator: SquareEmulator, served: RunningServer
) -> None:
    """Refusals arrive as ApiError whose body holds SDK Errors with known category and code;
    every code the emulator can send is one of the SDK's."""
    assert literals(ErrorCode) >= CODES
    account = emulator.accounts()[0]["id"]
    calls = [
        lambda: sdk.loyalty.accounts.get("nope"),
        lambda: sdk.loyalty.accounts.adjust(
            account, idempotency_key="neg", adjust_points={"points": -10_000}
        ),
        lambda: Square(token="wrong", base_url=served.url).loyalty.programs.get(program_id="main"),
        lambda: sdk.loyalty.search_events(limit=31),
    ]
    seen = []
    for call in calls:
        with pytest.raises(ApiError) as refused:
            call()
        error = Error.model_validate(refused.value.body["errors"][0])
        assert error.category in literals(ErrorCategory) and error.code in literals(ErrorCode)
        seen.append((refused.value.status_code, error.code))
    assert seen == [
        (404, "NOT_FOUND"),
        (400, "BAD_REQUEST"),
        (401, "UNAUTHORIZED"),
        (400, "VALUE_TOO_HIGH"),
    ]


def test_webhooks_verify_with_the_sdk_helper(emulator: SquareEmulator) -> None:
    """Every webhook verifies with `square.utils.webhooks_helper.verify_signature` over the
    registered URL and parses into the SDK's webhook event models; a wrong URL fails."""
    bodies: list[tuple[str, dict[str, str]]] = []

    async def hook(request: Request) -> Response:
        bodies.append(((await request.body()).decode(), dict(request.headers)))
        return Response(b"")

    with serve_in_thread(emulator.app) as server:  # no webhook URL yet: events stay queued
        sdk = Square(token=TOKEN, base_url=server.url)
        created = sdk.loyalty.accounts.create(
            loyalty_account={
                "program_id": emulator.program_id,
                "mapping": {"phone_number": "+14155558888"},
            },
            idempotency_key="hook-create",
        ).loyalty_account
        assert created is not None
        emulator.activity(created.id or "", "sale", 5)
    receiver = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    emulator.webhooks.url = "http://receiver/hook"
    emulator.webhooks.notification_url = NOTIFICATION_URL
    emulator.webhooks.transport = httpx.ASGITransport(receiver)
    anyio.run(emulator.webhooks.flush)
    models = {
        "loyalty.account.created": LoyaltyAccountCreatedEvent,
        "loyalty.account.updated": LoyaltyAccountUpdatedEvent,
        "loyalty.event.created": LoyaltyEventCreatedEvent,
    }
    assert [json.loads(b)["type"] for b, _h in bodies] == [
        "loyalty.account.created",
        "loyalty.event.created",
        "loyalty.account.updated",
    ]
    for body, headers in bodies:
        signature = headers["x-square-hmacsha256-signature"]
        assert verify_signature(
            request_body=body,
            signature_header=signature,
            signature_key=SIGNATURE_KEY,
            notification_url=NOTIFICATION_URL,
        )
        assert not verify_signature(
            request_body=body,
            signature_header=signature,
            signature_key=SIGNATURE_KEY,
            notification_url=NOTIFICATION_URL + "/",
        )
        event = models[json.loads(body)["type"]].model_validate(json.loads(body))
        assert_known_fields(event)
        assert event.event_id and event.merchant_id and event.data is not None
        assert event.data.object is not None
