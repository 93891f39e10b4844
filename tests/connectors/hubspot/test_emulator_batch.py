"""The HubSpot emulator's batch endpoints: 200 when every input goes through, 207 with
`errors` beside `results` when some do not, 400 for a batch refused whole."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from connectors.hubspot.emulator import HubSpotEmulator
from tests.fakes import ManualClock

pytestmark = pytest.mark.anyio

TOKEN = "emulator-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POINTS = "wix_loyalty_points"
BATCH = "/crm/v3/objects/contacts/batch"


@pytest.fixture
def emulator() -> HubSpotEmulator:
    emu = HubSpotEmulator(TOKEN, clock=ManualClock())
    emu.knobs.requests_per_ten_seconds = 0
    return emu


@pytest.fixture
def ids(emulator: HubSpotEmulator) -> list[str]:
    specs = [{"email": f"b{i}@example.com", "balance": 10 * i} for i in range(3)]
    return [c["id"] for c in emulator.seed_contacts(specs)]


@pytest.fixture
async def client(emulator: HubSpotEmulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(emulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hs", headers=AUTH) as http:
        yield http


async def test_read_all_found_is_200(client: httpx.AsyncClient, ids: list[str]) -> None:
    """batch/read answers 200 COMPLETE with each contact once, the requested properties and
    history, and startedAt/completedAt."""
    body = {
        "inputs": [{"id": ids[2]}, {"id": ids[0]}, {"id": ids[2]}],
        "properties": [POINTS],
        "propertiesWithHistory": [POINTS],
    }
    answer = await client.post(f"{BATCH}/read", json=body)
    assert answer.status_code == 200
    batch = answer.json()
    assert batch["status"] == "COMPLETE" and "errors" not in batch
    assert batch["startedAt"].endswith("Z") and batch["completedAt"] >= batch["startedAt"]
    assert [(r["id"], r["properties"][POINTS]) for r in batch["results"]] == [
        (ids[2], "20"),
        (ids[0], "0"),
    ]
    assert batch["results"][0]["propertiesWithHistory"][POINTS][0]["value"] == "20"


async def test_read_with_unknown_ids_is_207(client: httpx.AsyncClient, ids: list[str]) -> None:
    """Unknown ids make a 207: the found contacts in `results`, one OBJECT_NOT_FOUND error
    listing the missing ids in `context.ids`, and `numErrors`."""
    body = {"inputs": [{"id": ids[1]}, {"id": "777"}, {"id": "778"}], "properties": [POINTS]}
    answer = await client.post(f"{BATCH}/read", json=body)
    assert answer.status_code == 207
    batch = answer.json()
    assert [r["id"] for r in batch["results"]] == [ids[1]]
    assert batch["numErrors"] == 1
    error = batch["errors"][0]
    assert (error["status"], error["category"]) == ("error", "OBJECT_NOT_FOUND")
    assert error["context"] == {"ids": ["777", "778"]}
    assert error["message"].startswith("Could not get some CONTACT objects")


async def test_read_by_email(client: httpx.AsyncClient, ids: list[str]) -> None:
    """batch/read with idProperty=email finds contacts by email, any case."""
    body = {"inputs": [{"id": "B1@EXAMPLE.COM"}], "idProperty": "email", "properties": ["email"]}
    batch = (await client.post(f"{BATCH}/read", json=body)).json()
    assert [r["id"] for r in batch["results"]] == [ids[1]]


async def test_more_than_100_inputs_is_400(client: httpx.AsyncClient) -> None:
    """A batch holds at most 100 inputs."""
    body = {"inputs": [{"id": str(i)} for i in range(101)], "properties": []}
    answer = await client.post(f"{BATCH}/read", json=body)
    assert answer.status_code == 400 and answer.json()["category"] == "VALIDATION_ERROR"


async def test_update_200_then_207_for_unknown_ids(
    emulator: HubSpotEmulator, client: httpx.AsyncClient, ids: list[str]
) -> None:
    """batch/update writes every input (200); an unknown id makes a 207 with its error while
    the others are still written."""
    both = {
        "inputs": [
            {"id": ids[0], "properties": {POINTS: "5"}},
            {"id": ids[1], "properties": {POINTS: "6"}},
        ]
    }
    answer = await client.post(f"{BATCH}/update", json=both)
    assert answer.status_code == 200
    assert [r["properties"][POINTS] for r in answer.json()["results"]] == ["5", "6"]
    partial = {
        "inputs": [
            {"id": "999", "properties": {POINTS: "1"}},
            {"id": ids[2], "properties": {POINTS: "7"}},
        ]
    }
    answer = await client.post(f"{BATCH}/update", json=partial)
    assert answer.status_code == 207
    batch = answer.json()
    assert [r["id"] for r in batch["results"]] == [ids[2]]
    assert batch["errors"][0]["context"] == {"ids": ["999"]}
    assert [emulator.points(i) for i in ids] == [5, 6, 7]


async def test_update_refused_whole(
    emulator: HubSpotEmulator, client: httpx.AsyncClient, ids: list[str]
) -> None:
    """An invalid value or the same id twice refuses the whole batch (400), writing nothing;
    an email taken by another contact is that input's 409 in a 207."""
    invalid = {
        "inputs": [
            {"id": ids[0], "properties": {POINTS: "1"}},
            {"id": ids[1], "properties": {POINTS: "one"}},
        ]
    }
    assert (await client.post(f"{BATCH}/update", json=invalid)).status_code == 400
    twice = {
        "inputs": [
            {"id": ids[0], "properties": {POINTS: "1"}},
            {"id": ids[0], "properties": {POINTS: "2"}},
        ]
    }
    assert (await client.post(f"{BATCH}/update", json=twice)).status_code == 400
    assert emulator.points(ids[0]) == 0
    clash = {
        "inputs": [
            {"id": ids[0], "properties": {"email": "b1@example.com"}},
            {"id": ids[2], "properties": {POINTS: "3"}},
        ]
    }
    answer = await client.post(f"{BATCH}/update", json=clash)
    assert answer.status_code == 207
    assert answer.json()["errors"][0]["category"] == "CONFLICT"
    assert emulator.points(ids[2]) == 3


async def test_upsert_by_email(
    emulator: HubSpotEmulator, client: httpx.AsyncClient, ids: list[str]
) -> None:
    """batch/upsert by email updates the contact that has it (`new`: false) and creates one
    for an email nobody has (`new`: true, the email set)."""
    body = {
        "inputs": [
            {"id": "b2@example.com", "idProperty": "email", "properties": {POINTS: "50"}},
            {"id": "Brand@New.com", "idProperty": "email", "properties": {POINTS: "60"}},
        ]
    }
    answer = await client.post(f"{BATCH}/upsert", json=body)
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [(r["new"], r["properties"][POINTS]) for r in results] == [(False, "50"), (True, "60")]
    assert results[0]["id"] == ids[2] and results[1]["properties"]["email"] == "brand@new.com"
    assert emulator.points(results[1]["id"]) == 60
    no_id_property = {"inputs": [{"id": "x@example.com", "properties": {}}]}
    assert (await client.post(f"{BATCH}/upsert", json=no_id_property)).status_code == 400
