"""The HubSpot emulator's contact search: every operator, groups, sorts, paging, the lagging
index and the 10,000-result stop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from connectors.hubspot.emulator import HubSpotEmulator
from tests.fakes import ManualClock

pytestmark = pytest.mark.anyio

TOKEN = "emulator-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POINTS = "wix_loyalty_points"
SEARCH = "/crm/v3/objects/contacts/search"
# Five contacts: points 0, 10, 20, 30 and one without points.
BALANCES = [0, 10, 20, 30, None]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emulator(clock: ManualClock) -> HubSpotEmulator:
    emu = HubSpotEmulator(TOKEN, clock=clock)
    emu.knobs.requests_per_ten_seconds = 0
    emu.knobs.search_requests_per_second = 0
    return emu


@pytest.fixture
def ids(emulator: HubSpotEmulator) -> list[str]:
    """The ids of the five contacts of BALANCES, in that order."""
    specs = [
        {"email": f"c{i}@example.com", "name": f"Cy N{i}", "balance": b}
        for i, b in enumerate(BALANCES)
    ]
    return [c["id"] for c in emulator.seed_contacts(specs)]


@pytest.fixture
async def client(emulator: HubSpotEmulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(emulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hs", headers=AUTH) as http:
        yield http


def where(*filters: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A search body with one filter group."""
    return {"filterGroups": [{"filters": list(filters)}], **extra}


def points(operator: str, **value: Any) -> dict[str, Any]:
    return {"propertyName": POINTS, "operator": operator, **value}


async def found(client: httpx.AsyncClient, body: dict[str, Any]) -> list[str]:
    answer = await client.post(SEARCH, json=body)
    assert answer.status_code == 200, answer.text
    return [c["id"] for c in answer.json()["results"]]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (points("EQ", value="10"), [1]),
        (points("NEQ", value="10"), [0, 2, 3, 4]),
        (points("LT", value="20"), [0, 1]),
        (points("LTE", value="20"), [0, 1, 2]),
        (points("GT", value="10"), [2, 3]),
        (points("GTE", value="10.0"), [1, 2, 3]),
        (points("BETWEEN", value="5", highValue="20"), [1, 2]),
        (points("IN", values=["0", "30"]), [0, 3]),
        (points("NOT_IN", values=["0", "30"]), [1, 2, 4]),
        (points("HAS_PROPERTY"), [0, 1, 2, 3]),
        (points("NOT_HAS_PROPERTY"), [4]),
        ({"propertyName": "email", "operator": "EQ", "value": "C2@EXAMPLE.COM"}, [2]),
        (
            {"propertyName": "lastname", "operator": "CONTAINS_TOKEN", "value": "n*"},
            [0, 1, 2, 3, 4],
        ),
    ],
)
async def test_each_operator(
    client: httpx.AsyncClient, ids: list[str], spec: dict[str, Any], expected: list[int]
) -> None:
    """Each filter operator selects what HubSpot's would: numbers compare as numbers, text
    case-insensitively; a contact without the value matches only NEQ, NOT_IN and
    NOT_HAS_PROPERTY."""
    assert await found(client, where(spec)) == [ids[i] for i in expected]


async def test_and_within_a_group_or_between_groups(
    client: httpx.AsyncClient, ids: list[str]
) -> None:
    """Filters in one group must all match; any one group matching is enough."""
    body = {
        "filterGroups": [
            {"filters": [points("GTE", value="10"), points("LTE", value="20")]},
            {"filters": [{"propertyName": "email", "operator": "EQ", "value": "c4@example.com"}]},
        ]
    }
    assert await found(client, body) == [ids[1], ids[2], ids[4]]


async def test_sorts_and_properties(client: httpx.AsyncClient, ids: list[str]) -> None:
    """One sort, ascending or descending, contacts without the value last; results show the
    requested properties (or HubSpot's defaults) and a total."""
    descending = where(
        points("NEQ", value="-1"),
        sorts=[{"propertyName": POINTS, "direction": "DESCENDING"}],
        properties=[POINTS],
    )
    answer = (await client.post(SEARCH, json=descending)).json()
    assert [c["id"] for c in answer["results"]] == [ids[3], ids[2], ids[1], ids[0], ids[4]]
    assert answer["total"] == 5
    first = answer["results"][0]["properties"]
    assert set(first) == {POINTS, "createdate", "hs_object_id", "lastmodifieddate"}
    ascending = await found(client, {"sorts": [POINTS]})
    assert ascending == [ids[0], ids[1], ids[2], ids[3], ids[4]]
    plain = (await client.post(SEARCH, json={})).json()["results"][0]["properties"]
    assert set(plain) == {
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    }
    two_sorts = {"sorts": [POINTS, "email"]}
    assert (await client.post(SEARCH, json=two_sorts)).status_code == 400


async def test_paging_by_after_with_total(client: httpx.AsyncClient, ids: list[str]) -> None:
    """`after` is an offset: pages of `limit` until no `paging` (none when the last page is
    exactly full), `total` on each page."""
    pages = []
    body: dict[str, Any] = {"limit": 2}
    while True:
        page = (await client.post(SEARCH, json=body)).json()
        pages.append(page)
        if "paging" not in page:
            break
        body = {"limit": 2, "after": page["paging"]["next"]["after"]}
    assert [[c["id"] for c in p["results"]] for p in pages] == [ids[0:2], ids[2:4], ids[4:]]
    assert {p["total"] for p in pages} == {5}
    exact = (await client.post(SEARCH, json={"limit": 5})).json()
    assert len(exact["results"]) == 5 and "paging" not in exact


async def test_refusals(client: httpx.AsyncClient, ids: list[str]) -> None:
    """A limit over 200, more than 5 groups, an unknown property or operator, or a
    non-number compared with a number is a 400 VALIDATION_ERROR."""
    bodies = [
        {"limit": 201},
        {"filterGroups": [{"filters": [points("HAS_PROPERTY")]}] * 6},
        where({"propertyName": "nope", "operator": "EQ", "value": "1"}),
        where(points("ROUGHLY", value="1")),
        where(points("EQ", value="ten")),
        where(points("IN")),
    ]
    for body in bodies:
        answer = await client.post(SEARCH, json=body)
        assert answer.status_code == 400, body
        assert answer.json()["category"] == "VALIDATION_ERROR"
    assert (await client.post(SEARCH, json={"limit": 200})).status_code == 200


async def test_lastmodifieddate_filter_takes_epoch_millis(
    emulator: HubSpotEmulator, client: httpx.AsyncClient, clock: ManualClock, ids: list[str]
) -> None:
    """Datetime properties compare as instants, given as epoch milliseconds or ISO 8601."""
    start = int(clock.now.timestamp() * 1000)
    clock.advance(60)
    emulator.set_points(ids[2], 99)
    after = where({"propertyName": "lastmodifieddate", "operator": "GT", "value": str(start)})
    assert await found(client, after) == [ids[2]]
    iso = clock.now.isoformat()
    at = where({"propertyName": "lastmodifieddate", "operator": "GTE", "value": iso})
    assert await found(client, at) == [ids[2]]


async def test_search_lags_writes(
    emulator: HubSpotEmulator, client: httpx.AsyncClient, clock: ManualClock, ids: list[str]
) -> None:
    """With search_lag_seconds, a write reaches search that much later: the previous value
    is found until then, a new contact is not found at all."""
    emulator.knobs.search_lag_seconds = 5
    clock.advance(10)
    emulator.set_points(ids[1], 77)
    created = emulator.seed_contacts([{"email": "late@example.com", "balance": 77}])[0]
    seventy_seven = where(points("EQ", value="77"), properties=[POINTS])
    assert await found(client, seventy_seven) == []
    old = (await client.post(SEARCH, json=where(points("EQ", value="10")))).json()
    assert [c["id"] for c in old["results"]] == [ids[1]]
    clock.advance(4.9)
    assert await found(client, seventy_seven) == []
    clock.advance(0.2)
    assert await found(client, seventy_seven) == [ids[1], created["id"]]
    assert await found(client, where(points("EQ", value="10"))) == []


async def test_merged_and_archived_contacts_leave_the_index(
    emulator: HubSpotEmulator, client: httpx.AsyncClient, ids: list[str]
) -> None:
    """A contact merged away or archived is no longer found."""
    emulator.merge(ids[0], ids[1])
    emulator.archive(ids[2])
    assert await found(client, {}) == [ids[0], ids[3], ids[4]]


async def test_stops_at_search_max_results(
    emulator: HubSpotEmulator, client: httpx.AsyncClient
) -> None:
    """No page goes past search_max_results: the page reaching it still offers `after`, and
    asking for it is a 400 (HubSpot's 10,000 stop, made small here); total stays true."""
    emulator.knobs.search_max_results = 25
    emulator.seed_contacts(30)
    pages = []
    body: dict[str, Any] = {"limit": 10}
    for _ in range(3):
        page = (await client.post(SEARCH, json=body)).json()
        pages.append(page)
        body = {"limit": 10, "after": page["paging"]["next"]["after"]}
    assert [len(p["results"]) for p in pages] == [10, 10, 5]
    assert pages[-1]["total"] == 30 and body["after"] == "25"
    beyond = await client.post(SEARCH, json=body)
    assert beyond.status_code == 400 and beyond.json()["category"] == "VALIDATION_ERROR"


async def test_default_stop_is_ten_thousand(client: httpx.AsyncClient, ids: list[str]) -> None:
    """By default `after` may reach 9,999 but 10,000 is a 400."""
    assert (await client.post(SEARCH, json={"after": "9999"})).json()["results"] == []
    assert (await client.post(SEARCH, json={"after": "10000"})).status_code == 400
