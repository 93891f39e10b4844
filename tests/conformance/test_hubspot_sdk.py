"""The HubSpot emulator driven by HubSpot's official Python client (`hubspot-api-client`,
`from hubspot import HubSpot`) over a real localhost port, for every route the `hubspot`
connector uses.

Each answer is read twice: as the client's own model (its deserializer checks every required
field), and as raw JSON walked against the client's `openapi_types`, so that no object
anywhere carries a field the client's models do not declare. Errors arrive as the client's
`ApiException` and are parsed into its `Error` model. Webhook signatures are checked with the
client's own `hubspot.utils.signature.Signature`. If the client and the emulator disagree,
the emulator is wrong.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException
from hubspot.crm.contacts.models import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicMergeInput,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.properties import ApiException as PropertiesApiException
from hubspot.crm.properties.models import PropertyCreate
from hubspot.utils.signature import Signature

from connectors.hubspot.emulator import HubSpotEmulator
from syncd.sandbox.server import RunningServer, serve_in_thread
from tests.fakes import Receiver

TOKEN = "conformance-token"
SECRET = "conformance-client-secret"
POINTS = "wix_loyalty_points"
# As registered at HubSpot; the signature covers it with `%3A` (and the other listed escapes)
# decoded.
TARGET_URL = "https://syncd.example.com/webhooks/hubspot?portal=62515&tag=a%3Ab"
SIGNED_URI = "https://syncd.example.com/webhooks/hubspot?portal=62515&tag=a:b"
SEEDED = 45
PRIMITIVES = {"str", "int", "bool", "float", "datetime", "date", "object"}
# The client's answer models by status, as its APIs declare them.
PAGE = {200: "CollectionResponseSimplePublicObjectWithAssociationsForwardPaging"}
ONE = {200: "SimplePublicObjectWithAssociations"}
WRITTEN = {200: "SimplePublicObject", 201: "SimplePublicObject"}
FOUND = {200: "CollectionResponseWithTotalSimplePublicObjectForwardPaging"}
BATCH = {200: "BatchResponseSimplePublicObject", 207: "BatchResponseSimplePublicObjectWithErrors"}
UPSERTED = {
    200: "BatchResponseSimplePublicUpsertObject",
    207: "BatchResponseSimplePublicUpsertObjectWithErrors",
}


def assert_known(data: Any, type_name: str, module: ModuleType, where: str = "") -> None:
    """Every key in `data`, at every depth, is declared by the client's model `type_name`."""
    if data is None or type_name in PRIMITIVES:
        return
    if type_name.startswith("list["):
        for i, item in enumerate(data):
            assert_known(item, type_name[5:-1], module, f"{where}[{i}]")
        return
    if type_name.startswith("dict["):
        inner = type_name[type_name.index(",") + 2 : -1]
        for key, item in data.items():
            assert_known(item, inner, module, f"{where}.{key}")
        return
    model = getattr(module, type_name)
    unknown = set(data) - set(model.attribute_map.values())
    assert not unknown, f"{where or type_name}: fields unknown to the client: {sorted(unknown)}"
    for attr, attr_type in model.openapi_types.items():
        key = model.attribute_map[attr]
        if key in data:
            assert_known(data[key], attr_type, module, f"{where}.{key}")


def models_of(api: Any) -> ModuleType:
    """The models module of the client package `api` belongs to (contacts, properties)."""
    return importlib.import_module(type(api).__module__.split(".api.")[0] + ".models")


def strict(
    api: Any, method: str, types: dict[int, str], *args: Any, **kwargs: Any
) -> tuple[Any, int]:
    """Call `api.method`, check the raw JSON against the model its status names in `types`,
    and return the client's deserialized model and the status."""
    raw = getattr(api, method)(*args, _preload_content=False, **kwargs)
    assert raw.status in types, f"unexpected status {raw.status}"
    assert_known(json.loads(raw.data), types[raw.status], models_of(api))
    return api.api_client.deserialize(raw, types[raw.status]), raw.status


def error_of(exc: ApiException | PropertiesApiException, api: Any) -> Any:
    """The body of a refusal as the client's `Error` model (required fields checked)."""
    body = json.loads(exc.body)
    # Every HubSpot error body says "status": "error", which the client's Error model omits.
    assert body.pop("status") == "error"
    assert_known(body, "Error", models_of(api))
    return api.api_client.deserialize(SimpleNamespace(data=json.dumps(body)), "Error")


@pytest.fixture
def emulator() -> HubSpotEmulator:
    emu = HubSpotEmulator(TOKEN, client_secret=SECRET, seed=5, target_url=TARGET_URL)
    emu.knobs.requests_per_ten_seconds = 0
    emu.knobs.search_requests_per_second = 0
    emu.seed_contacts(SEEDED)
    return emu


@pytest.fixture
def served(emulator: HubSpotEmulator) -> Iterator[RunningServer]:
    with serve_in_thread(emulator.app) as server:
        yield server


@pytest.fixture
def client(served: RunningServer) -> HubSpot:
    """The official client, its host moved to the emulator (`host` is set on each API's
    Configuration)."""
    return HubSpot(access_token=TOKEN, host=served.url)


def test_properties_core_api(client: HubSpot, emulator: HubSpotEmulator) -> None:
    """properties core_api: get_all and get_by_name parse into ModelProperty; create answers
    201 with the new property; creating it again is a 409 CONFLICT ApiException."""
    core = client.crm.properties.core_api
    everything, _ = strict(core, "get_all", {200: "CollectionResponsePropertyNoPaging"}, "contacts")
    assert {"email", "phone", "hs_object_id", "lastmodifieddate", POINTS} <= {
        p.name for p in everything.results
    }
    points, _ = strict(core, "get_by_name", {200: "ModelProperty"}, "contacts", POINTS)
    assert (points.type, points.field_type, points.has_unique_value) == ("number", "number", False)
    spec = PropertyCreate(
        name="wix_contact_id",
        label="Wix contact id",
        type="string",
        field_type="text",
        group_name="contactinformation",
        has_unique_value=True,
    )
    created, status = strict(core, "create", {201: "ModelProperty"}, "contacts", spec)
    assert status == 201 and created.name == "wix_contact_id" and created.has_unique_value
    with pytest.raises(PropertiesApiException) as refused:
        core.create("contacts", spec)
    assert refused.value.status == 409
    assert error_of(refused.value, core).category == "CONFLICT"


def test_get_page_to_the_end(client: HubSpot, emulator: HubSpotEmulator) -> None:
    """basic_api.get_page: pages by `after` through every contact, the last page without
    paging; requested properties (repeated query parameters) and history come back."""
    basic = client.crm.contacts.basic_api
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page, _ = strict(
            basic,
            "get_page",
            PAGE,
            limit=20,
            after=after,
            properties=["email", POINTS],
            properties_with_history=[POINTS],
        )
        pages += 1
        for contact in page.results:
            assert set(contact.properties) >= {"email", POINTS, "hs_object_id"}
            assert contact.properties_with_history[POINTS][0].value == contact.properties[POINTS]
            seen.append(contact.id)
        if page.paging is None:
            break
        after = page.paging.next.after
        assert page.paging.next.link and f"after={after}" in page.paging.next.link
    assert pages == 3
    assert seen == [c["id"] for c in emulator.contacts()]


def test_get_by_id_with_history_and_id_property(client: HubSpot, emulator: HubSpotEmulator) -> None:
    """get_by_id: propertiesWithHistory newest first (ValueWithTimestamp, INTEGRATION for
    API writes, CRM_UI for UI edits); idProperty=email finds the contact case-insensitively."""
    basic = client.crm.contacts.basic_api
    target = emulator.contacts()[3]
    basic.update(target["id"], SimplePublicObjectInput(properties={POINTS: "120"}))
    emulator.set_points(target["id"], 75)
    contact, _ = strict(
        basic,
        "get_by_id",
        ONE,
        target["id"],
        properties=[POINTS],
        properties_with_history=[POINTS],
    )
    assert contact.properties[POINTS] == "75"
    values = [(h.value, h.source_type) for h in contact.properties_with_history[POINTS]]
    assert values[:2] == [("75", "CRM_UI"), ("120", "INTEGRATION")]
    assert contact.properties_with_history[POINTS][0].updated_by_user_id
    by_email, _ = strict(
        basic,
        "get_by_id",
        ONE,
        target["properties"]["email"].upper(),
        id_property="email",
    )
    assert by_email.id == target["id"]
    assert set(by_email.properties) == {
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    }


def test_update_create_and_their_refusals(client: HubSpot, emulator: HubSpotEmulator) -> None:
    """update answers SimplePublicObject with the new value; create answers 201; a duplicate
    email is a 409 CONFLICT naming the existing id; an unknown property is a 400
    VALIDATION_ERROR with PROPERTY_DOESNT_EXIST."""
    basic = client.crm.contacts.basic_api
    target = emulator.contacts()[0]
    updated, _ = strict(
        basic,
        "update",
        WRITTEN,
        target["id"],
        SimplePublicObjectInput(properties={POINTS: "33"}),
    )
    assert updated.properties[POINTS] == "33" and updated.updated_at >= updated.created_at
    new = SimplePublicObjectInputForCreate(properties={"email": "new@example.com", POINTS: "5"})
    created, status = strict(basic, "create", WRITTEN, new)
    assert status == 201 and created.properties["email"] == "new@example.com"
    with pytest.raises(ApiException) as duplicate:
        basic.create(new)
    assert duplicate.value.status == 409
    error = error_of(duplicate.value, basic)
    assert error.category == "CONFLICT"
    assert error.message == f"Contact already exists. Existing ID: {created.id}"
    with pytest.raises(ApiException) as unknown:
        basic.update(target["id"], SimplePublicObjectInput(properties={"nope": "1"}))
    assert unknown.value.status == 400
    error = error_of(unknown.value, basic)
    assert error.category == "VALIDATION_ERROR"
    assert [e.code for e in error.errors] == ["PROPERTY_DOESNT_EXIST"]


def test_search_filters_sorts_and_paging(client: HubSpot, emulator: HubSpotEmulator) -> None:
    """search_api.do_search: AND within a group, OR between groups, a sort, paging by
    `after` to the end, `total`; Filter models with BETWEEN, IN and HAS_PROPERTY."""
    search = client.crm.contacts.search_api
    expected = sorted(
        (c for c in emulator.contacts() if int(c["properties"][POINTS]) >= 200),
        key=lambda c: (-int(c["properties"][POINTS]), int(c["id"])),
    )
    found: list[str] = []
    after = None
    while True:
        request = PublicObjectSearchRequest(
            filter_groups=[
                FilterGroup(filters=[Filter(property_name=POINTS, operator="GTE", value="200")])
            ],
            sorts=[{"propertyName": POINTS, "direction": "DESCENDING"}],
            properties=[POINTS, "email"],
            limit=7,
            after=after,
        )
        page, _ = strict(search, "do_search", FOUND, request)
        assert page.total == len(expected)
        found.extend(c.id for c in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert found == [c["id"] for c in expected]
    first, second = emulator.contacts()[:2]
    groups = [
        FilterGroup(
            filters=[
                Filter(property_name=POINTS, operator="BETWEEN", value="0", high_value="499"),
                Filter(property_name="email", operator="IN", values=[first["properties"]["email"]]),
            ]
        ),
        FilterGroup(
            filters=[
                Filter(property_name="hs_object_id", operator="EQ", value=second["id"]),
                Filter(property_name="phone", operator="HAS_PROPERTY"),
            ]
        ),
    ]
    either, _ = strict(search, "do_search", FOUND, PublicObjectSearchRequest(filter_groups=groups))
    assert [c.id for c in either.results] == [first["id"], second["id"]]


def test_batch_read_update_upsert(client: HubSpot, emulator: HubSpotEmulator) -> None:
    """batch_api read/update/upsert: 200 when every input went through; 207 with `errors`
    (StandardError, OBJECT_NOT_FOUND with the ids) beside `results` when some did not;
    upsert by email updates or creates (`new`)."""
    batch = client.crm.contacts.batch_api
    a, b = emulator.contacts()[:2]
    read_input = BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=a["id"]), SimplePublicObjectId(id="999999")],
        properties=[POINTS],
        properties_with_history=[POINTS],
    )
    partial, status = strict(batch, "read", BATCH, read_input)
    assert status == 207 and partial.status == "COMPLETE" and partial.num_errors == 1
    assert [r.id for r in partial.results] == [a["id"]]
    assert partial.errors[0].category == "OBJECT_NOT_FOUND"
    assert partial.errors[0].context == {"ids": ["999999"]}
    by_email = BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=b["properties"]["email"])],
        id_property="email",
        properties=["email"],
        properties_with_history=[],
    )
    whole, status = strict(batch, "read", BATCH, by_email)
    assert status == 200 and whole.results[0].id == b["id"]
    update = BatchInputSimplePublicObjectBatchInput(
        inputs=[
            SimplePublicObjectBatchInput(id=a["id"], properties={POINTS: "11"}),
            SimplePublicObjectBatchInput(id="999999", properties={POINTS: "12"}),
        ]
    )
    updated, status = strict(batch, "update", BATCH, update)
    assert status == 207 and updated.results[0].properties[POINTS] == "11"
    assert emulator.points(a["id"]) == 11 and updated.errors[0].context == {"ids": ["999999"]}
    upsert = BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[
            SimplePublicObjectBatchInputUpsert(
                id=b["properties"]["email"], id_property="email", properties={POINTS: "21"}
            ),
            SimplePublicObjectBatchInputUpsert(
                id="fresh@example.com", id_property="email", properties={POINTS: "22"}
            ),
        ]
    )
    upserted, status = strict(batch, "upsert", UPSERTED, upsert)
    assert status == 200
    assert [(r.new, r.properties[POINTS]) for r in upserted.results] == [
        (False, "21"),
        (True, "22"),
    ]
    assert upserted.results[0].id == b["id"]
    assert upserted.results[1].properties["email"] == "fresh@example.com"


def test_merge_and_archive(client: HubSpot, emulator: HubSpotEmulator) -> None:
    """basic_api.merge answers the primary (keeping its points); the merged-away id and an
    archived id are 404 OBJECT_NOT_FOUND."""
    basic = client.crm.contacts.basic_api
    primary, secondary, doomed = emulator.contacts()[5:8]
    merged, _ = strict(
        basic,
        "merge",
        WRITTEN,
        PublicMergeInput(primary_object_id=primary["id"], object_id_to_merge=secondary["id"]),
    )
    assert merged.id == primary["id"]
    assert emulator.points(primary["id"]) == int(primary["properties"][POINTS])
    basic.archive(doomed["id"])
    for gone in (secondary["id"], doomed["id"]):
        with pytest.raises(ApiException) as missing:
            basic.get_by_id(gone)
        assert missing.value.status == 404
        assert error_of(missing.value, basic).category == "OBJECT_NOT_FOUND"


def test_auth_and_rate_limit_refusals(
    served: RunningServer, client: HubSpot, emulator: HubSpotEmulator
) -> None:
    """A wrong token is a 401 INVALID_AUTHENTICATION; over the 10 s limit a 429 with
    errorType RATE_LIMIT and policyName SECONDLY, rate-limit headers on every answer."""
    stranger = HubSpot(access_token="wrong", host=served.url).crm.contacts.basic_api
    with pytest.raises(ApiException) as denied:
        stranger.get_page(limit=1)
    assert denied.value.status == 401
    assert error_of(denied.value, stranger).category == "INVALID_AUTHENTICATION"
    emulator.knobs.requests_per_ten_seconds = 2
    basic = client.crm.contacts.basic_api
    _page, _status, headers = basic.get_page_with_http_info(limit=1)
    assert headers["X-HubSpot-RateLimit-Max"] == "2"
    assert headers["X-HubSpot-RateLimit-Remaining"] == "1"
    basic.get_page(limit=1)
    with pytest.raises(ApiException) as limited:
        basic.get_page(limit=1)
    assert limited.value.status == 429
    body = json.loads(limited.value.body)
    assert (body["errorType"], body["policyName"]) == ("RATE_LIMIT", "SECONDLY")
    assert limited.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, RunningServer]]:
    hook = Receiver()
    with serve_in_thread(hook.app) as server:
        yield hook, server


def test_webhook_signatures_pass_the_clients_check(
    served: RunningServer, emulator: HubSpotEmulator, receiver: tuple[Receiver, RunningServer]
) -> None:
    """Delivered batches carry X-HubSpot-Signature-v3 over the registered URL (listed escapes
    decoded) that Signature.is_valid(v3) accepts, and a v1 signature it accepts too; a
    tampered body fails; headers_for signs the same way."""
    hook, server = receiver
    emulator.webhooks.url = f"{server.url}/hook"
    first, second = emulator.contacts()[:2]
    emulator.set_points(first["id"], 901)
    emulator.set_points(second["id"], 902)
    deadline = time.monotonic() + 5
    while not hook.bodies and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(hook.bodies) == 1, "both changes should share one batch"
    body, headers = hook.texts[0], hook.headers[0]
    events = json.loads(body)
    assert [(e["objectId"], e["propertyValue"]) for e in events] == [
        (int(first["id"]), "901"),
        (int(second["id"]), "902"),
    ]

    def valid(text: str, signature: str, timestamp: str) -> bool:
        return Signature.is_valid(
            signature=signature,
            client_secret=SECRET,
            request_body=text,
            http_uri=SIGNED_URI,
            http_method="POST",
            signature_version="v3",
            timestamp=timestamp,
        )

    stamp = headers["x-hubspot-request-timestamp"]
    assert valid(body, headers["x-hubspot-signature-v3"], stamp)
    assert not valid(body.replace("901", "999"), headers["x-hubspot-signature-v3"], stamp)
    assert Signature.is_valid(
        signature=headers["x-hubspot-signature"],
        client_secret=SECRET,
        request_body=body,
        signature_version="v1",
    )
    batch = emulator.webhooks.batches[0]
    made = emulator.webhooks.headers_for(batch.body, batch.timestamp_ms)
    assert batch.body == body
    assert valid(batch.body, made["X-HubSpot-Signature-v3"], str(batch.timestamp_ms))
