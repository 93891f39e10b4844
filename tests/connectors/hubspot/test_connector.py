"""The hubspot connector reading, finding, creating and preparing against the emulator."""

from __future__ import annotations

import logging
import re

import pytest

from connectors.hubspot.connector import NO_EMAIL, HubSpotConnector
from connectors.hubspot.emulator import HubSpotEmulator
from connectors.hubspot.mapping import InvalidPoints, parse_points
from syncd.errors import FatalError, NotFoundError, SkipError
from tests.connectors.hubspot.conftest import OPERATION, POINTS, connect
from tests.fakes import FakeTime, ManualClock

pytestmark = pytest.mark.anyio


async def test_iterates_every_contact_in_pages_of_100(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator
) -> None:
    """Pages of 100 to the end, by id; each page's cursor resumes after it; match keys read."""
    emulator.seed_contacts(250)
    emulator.seed_contacts(
        [{"email": "Mixed@Example.COM", "phone": "(415) 555-0199", "name": "Ida Wu", "balance": 7}]
    )
    pages = [page async for page in hubspot.iter_accounts()]
    assert [len(p.accounts) for p in pages] == [100, 100, 51]
    assert pages[0].cursor and pages[-1].cursor is None
    accounts = [a for p in pages for a in p.accounts]
    wire = emulator.contacts()
    assert [a.id for a in accounts] == [w["id"] for w in wire]
    assert [a.balance for a in accounts] == [emulator.points(w["id"]) for w in wire]
    assert [a.version for a in accounts] == [w["properties"]["lastmodifieddate"] for w in wire]
    first, last = accounts[0], accounts[-1]
    assert (first.email, first.phone, first.name) == (
        "customer1@example.com",
        "+16175550001",
        wire[0]["properties"]["firstname"] + " " + wire[0]["properties"]["lastname"],
    )
    assert (last.email, last.phone, last.name) == ("mixed@example.com", "+14155550199", "Ida Wu")
    resumed = [page async for page in hubspot.iter_accounts(pages[0].cursor)]
    assert [a.id for p in resumed for a in p.accounts] == [a.id for a in accounts[100:]]


async def test_unreadable_points_are_skipped_and_counted(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A fraction of a point: get_account is SkipError; iter_accounts leaves the contact out
    with a warning event and counts it; an empty value is 0."""
    broken, empty, fine = (c["id"] for c in emulator.seed_contacts(3))
    emulator.edit(broken, {POINTS: "12.5"})
    emulator.edit(empty, {POINTS: ""})
    with pytest.raises(SkipError) as skipped:
        await hubspot.get_account(broken)
    assert skipped.value.code == "INVALID_POINTS" and skipped.value.account == broken
    assert (await hubspot.get_account(empty)).balance == 0
    with caplog.at_level(logging.WARNING):
        [page] = [page async for page in hubspot.iter_accounts()]
    assert [a.id for a in page.accounts] == [empty, fine]
    assert hubspot.unreadable_balances == 1
    assert [r.getMessage() for r in caplog.records] == ["hubspot.points_unreadable"]


@pytest.mark.parametrize(
    ("value", "points"), [(None, 0), ("", 0), (" ", 0), ("120", 120), ("120.0", 120), ("-3", -3)]
)
def test_points_values(value: str | None, points: int) -> None:
    """Missing or empty is 0; a whole number in any decimal spelling is that number."""
    assert parse_points(value) == points


@pytest.mark.parametrize("value", ["12.5", "abc", "NaN", "Infinity", "1e400.5"])
def test_points_values_refused(value: str) -> None:
    """Fractions, words and non-finite numbers are not points."""
    with pytest.raises(InvalidPoints):
        parse_points(value)


async def test_get_account_reads_fresh_and_unknown_is_not_found(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator
) -> None:
    """An operator's edit a moment ago is seen; an unknown id is NotFoundError (404)."""
    [contact] = emulator.seed_contacts([{"email": "a@example.com", "balance": 10}])
    emulator.set_points(contact["id"], 44)
    assert (await hubspot.get_account(contact["id"])).balance == 44
    with pytest.raises(NotFoundError) as missing:
        await hubspot.get_account("999999")
    assert (missing.value.status, missing.value.code) == (404, "OBJECT_NOT_FOUND")
    assert missing.value.request_id


async def test_find_by_email_reads_by_id_property_and_by_phone_searches(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator, clock: ManualClock
) -> None:
    """Email is a strongly consistent read (any case); phone is a search, which lags: a
    contact made a moment ago is found by email at once and by phone only later."""
    emulator.knobs.search_lag_seconds = 5
    [old] = emulator.seed_contacts([{"email": "old@example.com", "phone": "+14155550101"}])
    clock.advance(10)
    [new] = emulator.seed_contacts([{"email": "New@Example.com", "phone": "+14155550102"}])
    assert [a.id for a in await hubspot.find_accounts("email", "NEW@example.com")] == [new["id"]]
    assert [a.id for a in await hubspot.find_accounts("phone", "+14155550101")] == [old["id"]]
    assert await hubspot.find_accounts("phone", "+14155550102") == []
    clock.advance(5)
    assert [a.id for a in await hubspot.find_accounts("phone", "+14155550102")] == [new["id"]]
    assert await hubspot.find_accounts("email", "nobody@example.com") == []
    assert await hubspot.find_accounts("email", "not an email") == []
    with pytest.raises(ValueError):
        await hubspot.find_accounts("loyalty_id", "x")


async def test_find_by_phone_returns_every_contact_with_it(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator
) -> None:
    """HubSpot does not keep phones unique: each contact having it comes back."""
    specs = [{"email": f"twin{i}@example.com", "phone": "+14155550150"} for i in range(3)]
    made = emulator.seed_contacts(specs)
    found = await hubspot.find_accounts("phone", "+14155550150")
    assert sorted(a.id for a in found) == sorted(c["id"] for c in made)


async def test_create_account_is_keyed_by_email(
    hubspot: HubSpotConnector, emulator: HubSpotEmulator
) -> None:
    """A contact with email, phone, split name and 0 points; the same email again (any case)
    returns that contact instead of a second one."""
    created = await hubspot.create_account(
        email="Nia@Example.com", phone="+14155558000", name="Nia de la Cruz", key="link-1"
    )
    assert (created.balance, created.email, created.phone) == (0, "nia@example.com", "+14155558000")
    values = emulator.contact(created.id)["properties"]
    assert (values["firstname"], values["lastname"], values[POINTS]) == ("Nia", "de la Cruz", "0")
    again = await hubspot.create_account(email="NIA@example.com", phone=None, name=None, key="k2")
    assert again.id == created.id
    assert [c["id"] for c in emulator.contacts()] == [created.id]
    stats = emulator.stats.dump()
    assert stats["requests"]["POST /crm/v3/objects/contacts"] == 2
    assert stats["statuses"]["409"] == 1


async def test_create_account_needs_an_email(hubspot: HubSpotConnector) -> None:
    """No email (or not an email): SkipError saying HubSpot creates contacts by email."""
    for email in (None, "", "no-at-sign"):
        with pytest.raises(SkipError, match=re.escape(NO_EMAIL)):
            await hubspot.create_account(email=email, phone="+14155558001", name=None, key="k")


async def test_prepare_creates_both_properties_once(
    clock: ManualClock, fake_time: FakeTime
) -> None:
    """On a portal without them, prepare creates the points (number) and operation (text)
    properties and says so; a second prepare creates nothing."""
    emulator = HubSpotEmulator(clock=clock, define_points_property=False)
    async with connect(emulator, fake_time, access_token="sandbox-hubspot-token") as hubspot:
        made = await hubspot.prepare()
        assert made == [
            "created HubSpot contact property wix_loyalty_points (Wix loyalty points)",
            "created HubSpot contact property syncd_last_operation (syncd last operation)",
        ]
        assert await hubspot.prepare() == []
    defined = emulator.state.properties.defined
    assert (defined[POINTS].type, defined[POINTS].field_type) == ("number", "number")
    assert (defined[OPERATION].type, defined[OPERATION].field_type) == ("string", "text")
    assert defined[POINTS].group_name == "contactinformation"


async def test_prepare_without_permission_to_create_is_fatal(
    clock: ManualClock, fake_time: FakeTime
) -> None:
    """create_properties = false and a property missing: FatalError naming what to create."""
    emulator = HubSpotEmulator(clock=clock)
    settings = {"access_token": "sandbox-hubspot-token", "create_properties": False}
    async with connect(emulator, fake_time, **settings) as hubspot:
        with pytest.raises(FatalError) as fatal:
            await hubspot.prepare()
    message = str(fatal.value)
    assert "syncd_last_operation" in message and "create_properties = true" in message
    assert OPERATION not in emulator.state.properties.defined
