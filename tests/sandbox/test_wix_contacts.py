"""Contacts v4: creation, duplicate refusal, phones with E.164, query with offset paging."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from syncd.sandbox.wix.contacts import e164

CONTACTS = "/contacts/v4/contacts"


def info(
    email: str | None = None, phone: str | None = None, country: str | None = None
) -> dict[str, Any]:
    """A contact `info` with a name and the given email and phone."""
    result: dict[str, Any] = {"name": {"first": "Ann", "last": "Lee"}}
    if email:
        result["emails"] = {"items": [{"email": email, "tag": "MAIN"}]}
    if phone:
        item = {"phone": phone} | ({"countryCode": country} if country else {})
        result["phones"] = {"items": [item]}
    return result


@pytest.mark.anyio
async def test_create_and_get_a_contact(client: httpx.AsyncClient) -> None:
    """A created contact has an id, an int revision, primary info, and reads back by id."""
    created = await client.post(CONTACTS, json={"info": info("ann@x.io", "(415) 200-0123", "US")})
    assert created.status_code == 200
    contact = created.json()["contact"]
    assert contact["revision"] == 1
    assert contact["primaryInfo"] == {"email": "ann@x.io", "phone": "(415) 200-0123"}
    phone = contact["info"]["phones"]["items"][0]
    assert phone["e164Phone"] == "+14152000123" and phone["primary"] is True
    fetched = await client.get(f"{CONTACTS}/{contact['id']}", params={"id": contact["id"]})
    assert fetched.json() == {"contact": contact, "responseType": "REGULAR"}
    assert (await client.get(f"{CONTACTS}/nobody")).status_code == 404


@pytest.mark.anyio
async def test_duplicate_email_is_refused_with_the_existing_id(client: httpx.AsyncClient) -> None:
    """allowDuplicates false (the default) refuses a used email, naming the contact to link to."""
    first = (await client.post(CONTACTS, json={"info": info("ann@x.io")})).json()["contact"]
    again = await client.post(CONTACTS, json={"info": info("ANN@x.io"), "allowDuplicates": False})
    assert again.status_code == 409
    error = again.json()["details"]["applicationError"]
    assert error["code"] == "DUPLICATE_CONTACT_EXISTS"
    assert error["data"]["duplicateContactId"] == first["id"]
    allowed = await client.post(CONTACTS, json={"info": info("ann@x.io"), "allowDuplicates": True})
    assert allowed.status_code == 200


@pytest.mark.anyio
async def test_phone_duplicates_count_only_without_an_email(client: httpx.AsyncClient) -> None:
    """Without an email a used phone is a duplicate; with a new email it is not."""
    first = await client.post(CONTACTS, json={"info": info(phone="+1 415 200 0123")})
    same_phone = await client.post(
        CONTACTS, json={"info": info(phone="(415) 200-0123", country="US")}
    )
    assert same_phone.status_code == 409
    data = same_phone.json()["details"]["applicationError"]["data"]
    assert data["duplicateContactId"] == first.json()["contact"]["id"]
    with_email = await client.post(CONTACTS, json={"info": info("new@x.io", "+14152000123")})
    assert with_email.status_code == 200


@pytest.mark.anyio
async def test_a_contact_needs_something_to_identify_it(client: httpx.AsyncClient) -> None:
    """An empty info, or a malformed email, is a 400."""
    assert (await client.post(CONTACTS, json={"info": {}})).status_code == 400
    bad = {"info": {"emails": {"items": [{"email": "not-an-email"}]}}}
    assert (await client.post(CONTACTS, json=bad)).status_code == 400


@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        ("(415) 200-0123", "US", "+14152000123"),
        ("1-415-200-0123", "US", "+14152000123"),
        ("+44 20 7946 0958", None, "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("200-0123", "US", None),
        ("(415) 200-0123", None, None),
    ],
)
def test_e164_is_generated_when_it_can_be(
    phone: str, country: str | None, expected: str | None
) -> None:
    """e164Phone comes from a "+" number, or a national number with a known country."""
    assert e164(phone, country) == expected


@pytest.mark.anyio
async def test_query_contacts_by_email_with_offset_paging(client: httpx.AsyncClient) -> None:
    """Query filters on info.emails.email and pages by limit/offset with a total."""
    for n in range(5):
        await client.post(CONTACTS, json={"info": info(f"c{n}@x.io")})
    body = (
        await client.post(
            f"{CONTACTS}/query",
            json={
                "query": {
                    "filter": {"info.emails.email": "c3@x.io"},
                    "paging": {"limit": 5, "offset": 0},
                }
            },
        )
    ).json()
    assert [c["primaryInfo"]["email"] for c in body["contacts"]] == ["c3@x.io"]
    page = (
        await client.post(
            f"{CONTACTS}/query", json={"query": {"paging": {"limit": 2, "offset": 4}}}
        )
    ).json()
    assert page["pagingMetadata"] == {"count": 1, "offset": 4, "total": 5, "tooManyToCount": False}
    too_many = await client.post(f"{CONTACTS}/query", json={"query": {"paging": {"limit": 1001}}})
    assert too_many.status_code == 400


@pytest.mark.anyio
async def test_query_contacts_free_text_search(client: httpx.AsyncClient) -> None:
    """The top-level `search` string narrows a contacts query."""
    await client.post(CONTACTS, json={"info": info("zed@x.io")})
    await client.post(CONTACTS, json={"info": info("amy@x.io")})
    body = (await client.post(f"{CONTACTS}/query", json={"search": "zed", "query": {}})).json()
    assert [c["primaryInfo"]["email"] for c in body["contacts"]] == ["zed@x.io"]
