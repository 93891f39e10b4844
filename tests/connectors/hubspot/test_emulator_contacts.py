"""The HubSpot emulator's contacts and properties: paging, reads by idProperty, property
history, writes and their refusals, merges and archiving."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import httpx
import pytest

from connectors.hubspot.emulator import HubSpotApiError, HubSpotEmulator
from tests.fakes import ManualClock

pytestmark = pytest.mark.anyio

TOKEN = "emulator-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POINTS = "wix_loyalty_points"
CONTACTS = "/crm/v3/objects/contacts"
PROPERTIES = "/crm/v3/properties/contacts"
DEFAULTS = {"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emulator(clock: ManualClock) -> HubSpotEmulator:
    emu = HubSpotEmulator(TOKEN, clock=clock)
    emu.knobs.requests_per_ten_seconds = 0
    return emu


@pytest.fixture
async def client(emulator: HubSpotEmulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(emulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hs", headers=AUTH) as http:
        yield http


async def test_list_pages_by_next_id_until_no_paging(
    emulator: HubSpotEmulator, client: httpx.AsyncClient
) -> None:
    """GET /objects/contacts pages with `after` = the next id and a `link`; the last page has
    no `paging` (even when exactly full); every live contact comes once, lowest id first."""
    emulator.seed_contacts(25)
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 10}
    pages = []
    while True:
        page = (await client.get(CONTACTS, params=params)).json()
        if pages:
            assert page["results"][0]["id"] == params["after"]
        pages.append(page)
        seen += [c["id"] for c in page["results"]]
        if "paging" not in page:
            break
        after = page["paging"]["next"]["after"]
        assert f"after={after}" in page["paging"]["next"]["link"]
        params = {"limit": 10, "after": after}
    assert [len(p["results"]) for p in pages] == [10, 10, 5]
    assert seen == [c["id"] for c in emulator.contacts()]
    assert seen == sorted(seen, key=int) and len(set(seen)) == 25
    exact = (await client.get(CONTACTS, params={"limit": 25})).json()
    assert len(exact["results"]) == 25 and "paging" not in exact


async def test_list_limits(emulator: HubSpotEmulator, client: httpx.AsyncClient) -> None:
    """The list takes at most 100 per page, 50 with propertiesWithHistory; 10 by default."""
    emulator.seed_contacts(12)
    assert len((await client.get(CONTACTS)).json()["results"]) == 10
    assert (await client.get(CONTACTS, params={"limit": 100})).status_code == 200
    too_many = await client.get(CONTACTS, params={"limit": 101})
    assert too_many.status_code == 400 and too_many.json()["category"] == "VALIDATION_ERROR"
    history = {"limit": 51, "propertiesWithHistory": POINTS}
    assert (await client.get(CONTACTS, params=history)).status_code == 400


async def test_requested_properties_repeated_or_comma_separated(
    emulator: HubSpotEmulator, client: httpx.AsyncClient
) -> None:
    """`properties` may repeat or hold commas; unknown names are ignored, a known property
    without a value is null; createdate, hs_object_id and lastmodifieddate always come."""
    emulator.seed_contacts([{"email": "a@example.com", "name": "Ann"}])
    repeated = await client.get(CONTACTS, params=[("properties", "email"), ("properties", "phone")])
    commas = await client.get(CONTACTS, params={"properties": "email,phone,nonsense"})
    for answer in (repeated, commas):
        properties = answer.json()["results"][0]["properties"]
        assert properties["email"] == "a@example.com" and properties["phone"] is None
        assert set(properties) == {
            "email",
            "phone",
            "createdate",
            "hs_object_id",
            "lastmodifieddate",
        }


async def test_get_shows_defaults_and_finds_by_email(
    emulator: HubSpotEmulator, client: httpx.AsyncClient
) -> None:
    """GET by id shows HubSpot's default properties when none are asked for; idProperty=email
    matches case-insensitively; an unknown id or email is 404 OBJECT_NOT_FOUND; a non-unique
    idProperty is a 400."""
    contact = emulator.seed_contacts([{"email": "Mixed@Example.com", "name": "Ann Lee"}])[0]
    by_id = (await client.get(f"{CONTACTS}/{contact['id']}")).json()
    assert set(by_id["properties"]) == DEFAULTS
    assert by_id["properties"]["email"] == "mixed@example.com"
    assert (by_id["properties"]["firstname"], by_id["properties"]["lastname"]) == ("Ann", "Lee")
    assert by_id["properties"]["hs_object_id"] == contact["id"] and by_id["archived"] is False
    by_email = await client.get(f"{CONTACTS}/MIXED@example.COM", params={"idProperty": "email"})
    assert by_email.json()["id"] == contact["id"]
    for missing in (
        await client.get(f"{CONTACTS}/424242"),
        await client.get(f"{CONTACTS}/nobody@example.com", params={"idProperty": "email"}),
    ):
        assert missing.status_code == 404
        assert missing.json()["category"] == "OBJECT_NOT_FOUND"
    not_unique = await client.get(f"{CONTACTS}/Ann", params={"idProperty": "firstname"})
    assert not_unique.status_code == 400


async def test_history_newest_first_with_sources(
    emulator: HubSpotEmulator, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    """propertiesWithHistory lists values newest first: IMPORT when seeded, INTEGRATION (the
    app id as sourceId) for API writes, CRM_UI (with the user) for UI edits; all values of
    one PATCH share its timestamp."""
    contact = emulator.seed_contacts([{"email": "h@example.com", "balance": 10}])[0]
    clock.advance(1)
    body = {"properties": {POINTS: "20", "firstname": "Hal"}}
    await client.patch(f"{CONTACTS}/{contact['id']}", json=body)
    clock.advance(1)
    emulator.set_points(contact["id"], 30)
    params = {"propertiesWithHistory": f"{POINTS},firstname", "properties": POINTS}
    answer = (await client.get(f"{CONTACTS}/{contact['id']}", params=params)).json()
    history = answer["propertiesWithHistory"]
    assert [(h["value"], h["sourceType"]) for h in history[POINTS]] == [
        ("30", "CRM_UI"),
        ("20", "INTEGRATION"),
        ("10", "IMPORT"),
    ]
    assert history[POINTS][0]["sourceId"].startswith("userId:")
    assert history[POINTS][0]["updatedByUserId"] > 0
    assert history[POINTS][1]["sourceId"] == str(emulator.app_id)
    assert history["firstname"][0]["timestamp"] == history[POINTS][1]["timestamp"]
    assert emulator.history(contact["id"], POINTS) == history[POINTS]


async def test_patch_moves_lastmodifieddate_only_on_change(
    emulator: HubSpotEmulator, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    """A PATCH that changes a value moves lastmodifieddate and updatedAt and answers the
    written properties; writing the same value again changes nothing."""
    contact = emulator.seed_contacts([{"email": "m@example.com", "balance": 5}])[0]
    clock.advance(2)
    first = await client.patch(f"{CONTACTS}/{contact['id']}", json={"properties": {POINTS: 6}})
    body = first.json()
    assert first.status_code == 200 and body["properties"][POINTS] == "6"
    assert body["updatedAt"] > contact["updatedAt"]
    assert body["properties"]["lastmodifieddate"] == body["updatedAt"]
    clock.advance(2)
    again = await client.patch(f"{CONTACTS}/{contact['id']}", json={"properties": {POINTS: "6"}})
    assert again.json()["updatedAt"] == body["updatedAt"]
    assert len(emulator.history(contact["id"], POINTS)) == 2


async def test_patch_refuses_unknown_properties_and_bad_numbers_whole(
    emulator: HubSpotEmulator, client: httpx.AsyncClient
) -> None:
    """An unknown property (PROPERTY_DOESNT_EXIST) or a non-number for a number property
    (INVALID_DECIMAL) is a 400 VALIDATION_ERROR naming each, and nothing is written."""
    contact = emulator.seed_contacts([{"email": "v@example.com", "name": "Val Ng", "balance": 5}])[
        0
    ]
    body = {"properties": {"nope": "1", POINTS: "lots", "firstname": "Vic"}}
    answer = await client.patch(f"{CONTACTS}/{contact['id']}", json=body)
    assert answer.status_code == 400
    error = answer.json()
    assert (error["status"], error["category"]) == ("error", "VALIDATION_ERROR")
    assert error["message"].startswith("Property values were not valid: ")
    assert [(e["code"], e["context"]["propertyName"]) for e in error["errors"]] == [
        ("PROPERTY_DOESNT_EXIST", ["nope"]),
        ("INVALID_DECIMAL", [POINTS]),
    ]
    assert emulator.points(contact["id"]) == 5
    assert emulator.contact(contact["id"])["properties"]["firstname"] == "Val"


async def test_numbers_are_normalized_and_empty_clears(
    emulator: HubSpotEmulator, client: httpx.AsyncClient
) -> None:
    """Number values come back normalized ("120.50" -> "120.5", "7.0" -> "7"); "" clears a
    value; a read-only property cannot be written."""
    contact = emulator.seed_contacts([{"email": "n@example.com", "balance": 1}])[0]
    url = f"{CONTACTS}/{contact['id']}"
    assert (await client.patch(url, json={"properties": {POINTS: "120.50"}})).json()["properties"][
        POINTS
    ] == "120.5"
    assert (await client.patch(url, json={"properties": {POINTS: "7.0"}})).json()["properties"][
        POINTS
    ] == "7"
    cleared = await client.patch(url, json={"properties": {POINTS: ""}})
    assert cleared.json()["properties"][POINTS] is None and emulator.points(contact["id"]) is None
    read_only = await client.patch(url, json={"properties": {"hs_object_id": "1"}})
    assert read_only.json()["errors"][0]["code"] == "READ_ONLY_VALUE"


async def test_create_answers_201_and_duplicate_email_409(
    emulator: HubSpotEmulator, client: httpx.AsyncClient
) -> None:
    """POST /objects/contacts answers 201 with a numeric id; the same email again (any case)
    is 409 CONFLICT "Contact already exists. Existing ID: n"."""
    created = await client.post(
        CONTACTS, json={"properties": {"email": "new@example.com", POINTS: "3"}}
    )
    assert created.status_code == 201
    contact = created.json()
    assert contact["id"].isdigit() and contact["properties"]["hs_object_id"] == contact["id"]
    assert contact["createdAt"].endswith("Z") and len(contact["createdAt"]) == 24
    again = await client.post(CONTACTS, json={"properties": {"email": "NEW@example.com"}})
    assert again.status_code == 409
    assert again.json()["category"] == "CONFLICT"
    assert again.json()["message"] == f"Contact already exists. Existing ID: {contact['id']}"
    bad = await client.post(CONTACTS, json={"properties": {"email": "not-an-email"}})
    assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "INVALID_EMAIL"


async def test_property_definitions(client: httpx.AsyncClient) -> None:
    """Properties: the standard ones and the points property are listed and readable; a new
    one is created (201); an existing name is 409 CONFLICT; an unknown one is 404."""
    listed = {p["name"]: p for p in (await client.get(PROPERTIES)).json()["results"]}
    assert {"email", "firstname", "lastname", "phone", "createdate", "hs_object_id"} <= set(listed)
    assert (listed[POINTS]["type"], listed[POINTS]["fieldType"]) == ("number", "number")
    assert listed["email"]["hubspotDefined"] is True
    spec = {
        "name": "wix_contact_id",
        "label": "Wix contact id",
        "type": "string",
        "fieldType": "text",
        "groupName": "contactinformation",
        "hasUniqueValue": True,
    }
    created = await client.post(PROPERTIES, json=spec)
    assert created.status_code == 201 and created.json()["hasUniqueValue"] is True
    assert (await client.get(f"{PROPERTIES}/wix_contact_id")).json()["label"] == "Wix contact id"
    duplicate = await client.post(PROPERTIES, json=spec)
    assert duplicate.status_code == 409 and duplicate.json()["category"] == "CONFLICT"
    missing = await client.get(f"{PROPERTIES}/nothing")
    assert missing.status_code == 404 and missing.json()["category"] == "OBJECT_NOT_FOUND"
    incomplete = await client.post(PROPERTIES, json={"name": "x_only"})
    assert incomplete.status_code == 400


async def test_points_property_can_start_undefined(clock: ManualClock) -> None:
    """With define_points_property=False the points property is 404 and writing it is
    PROPERTY_DOESNT_EXIST until the connector creates it."""
    emulator = HubSpotEmulator(TOKEN, clock=clock, define_points_property=False)
    contact = emulator.seed_contacts([{"email": "u@example.com", "balance": 9}])[0]
    assert emulator.points(contact["id"]) is None
    transport = httpx.ASGITransport(emulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hs", headers=AUTH) as http:
        assert (await http.get(f"{PROPERTIES}/{POINTS}")).status_code == 404
        write = {"properties": {POINTS: "4"}}
        refused = await http.patch(f"{CONTACTS}/{contact['id']}", json=write)
        assert refused.json()["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
        spec = {
            "name": POINTS,
            "label": "Points",
            "type": "number",
            "fieldType": "number",
            "groupName": "contactinformation",
        }
        assert (await http.post(PROPERTIES, json=spec)).status_code == 201
        assert (await http.patch(f"{CONTACTS}/{contact['id']}", json=write)).status_code == 200
    assert emulator.points(contact["id"]) == 4


async def test_unique_property_is_an_id_property_and_refuses_clashes(
    emulator: HubSpotEmulator, client: httpx.AsyncClient
) -> None:
    """A property with hasUniqueValue serves as idProperty; giving its value to a second
    contact is 409 CONFLICT."""
    spec = {
        "name": "wix_contact_id",
        "label": "Wix id",
        "type": "string",
        "fieldType": "text",
        "groupName": "contactinformation",
        "hasUniqueValue": True,
    }
    await client.post(PROPERTIES, json=spec)
    first, second = emulator.seed_contacts(2)
    await client.patch(f"{CONTACTS}/{first['id']}", json={"properties": {"wix_contact_id": "w1"}})
    found = await client.get(f"{CONTACTS}/w1", params={"idProperty": "wix_contact_id"})
    assert found.json()["id"] == first["id"]
    clash = await client.patch(
        f"{CONTACTS}/{second['id']}", json={"properties": {"wix_contact_id": "w1"}}
    )
    assert clash.status_code == 409


async def test_merge_keeps_primary_and_hides_secondary(
    emulator: HubSpotEmulator, client: httpx.AsyncClient
) -> None:
    """After a merge the primary keeps its id and points, takes values it lacked, answers
    for the secondary's email; the secondary is gone from lists and its id is 404 (or the
    primary with merged_lookup="primary")."""
    primary, secondary = emulator.seed_contacts(
        [
            {"email": "p@example.com", "balance": 10},
            {"email": "s@example.com", "phone": "+16175550999", "balance": 90},
        ]
    )
    await client.patch(f"{CONTACTS}/{primary['id']}", json={"properties": {"phone": ""}})
    emulator.merge(primary["id"], secondary["id"])
    assert emulator.points(primary["id"]) == 10
    merged = emulator.contact(primary["id"])["properties"]
    assert merged["phone"] == "+16175550999"
    assert merged["hs_merged_object_ids"] == secondary["id"]
    assert [c["id"] for c in (await client.get(CONTACTS)).json()["results"]] == [primary["id"]]
    assert (await client.get(f"{CONTACTS}/{secondary['id']}")).status_code == 404
    by_old_email = await client.get(f"{CONTACTS}/s@example.com", params={"idProperty": "email"})
    assert by_old_email.json()["id"] == primary["id"]
    emulator.knobs.merged_lookup = "primary"
    assert (await client.get(f"{CONTACTS}/{secondary['id']}")).json()["id"] == primary["id"]


async def test_merge_route(emulator: HubSpotEmulator, client: httpx.AsyncClient) -> None:
    """POST /objects/contacts/merge merges through the API and answers the primary."""
    primary, secondary = emulator.seed_contacts(2)
    body = {"primaryObjectId": primary["id"], "objectIdToMerge": secondary["id"]}
    answer = await client.post(f"{CONTACTS}/merge", json=body)
    assert answer.status_code == 200 and answer.json()["id"] == primary["id"]
    assert [c["id"] for c in emulator.contacts()] == [primary["id"]]
    itself = {"primaryObjectId": primary["id"], "objectIdToMerge": primary["id"]}
    assert (await client.post(f"{CONTACTS}/merge", json=itself)).status_code == 400


async def test_archive(emulator: HubSpotEmulator, client: httpx.AsyncClient) -> None:
    """DELETE archives (204): the id is 404, the contact is listed only with archived=true."""
    kept, gone = emulator.seed_contacts(2)
    assert (await client.delete(f"{CONTACTS}/{gone['id']}")).status_code == 204
    assert (await client.get(f"{CONTACTS}/{gone['id']}")).status_code == 404
    live = (await client.get(CONTACTS)).json()["results"]
    archived = (await client.get(CONTACTS, params={"archived": "true"})).json()["results"]
    assert [c["id"] for c in live] == [kept["id"]]
    assert [(c["id"], c["archived"]) for c in archived] == [(gone["id"], True)]
    assert "archivedAt" in archived[0]
    with pytest.raises(HubSpotApiError):
        emulator.contact(gone["id"])


async def test_ids_are_seeded_rising_numbers(clock: ManualClock) -> None:
    """Ids are numeric strings that rise with gaps; the same seed gives the same ids, and
    reset() replays them."""
    one, two = HubSpotEmulator(seed=4, clock=clock), HubSpotEmulator(seed=4, clock=clock)
    ids = [c["id"] for c in one.seed_contacts(6)]
    assert ids == [c["id"] for c in two.seed_contacts(6)]
    assert all(int(b) > int(a) for a, b in itertools.pairwise(ids))
    assert [int(b) - int(a) for a, b in itertools.pairwise(ids)] != [1] * 5
    one.reset()
    assert one.contacts() == [] and [c["id"] for c in one.seed_contacts(6)] == ids
    assert [c["id"] for c in HubSpotEmulator(seed=5, clock=clock).seed_contacts(6)] != ids
