"""The HubSpot CRM client: contacts (read, list, search, create, update) and their properties.

One `HubSpotClient` per connector. Every call spends a token from the connector's budget
(a search also one from a second bucket first: HubSpot limits search to a few requests a
second), is mapped into syncd's error tree by `mapping.raise_for_response`, and is retried
under the one bounded policy (`syncd.retry`) as far as repeating it is safe:

- reads and searches are repeated freely;
- creating a contact is repeated: HubSpot refuses a second contact with the same email (409
  naming the first), so a repeat never makes two;
- updating a contact is sent once: HubSpot dedupes nothing, so a 5xx or a lost answer after
  sending is `OutcomeUnknownError` at once and the caller reads back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import quote

import httpx

from connectors.hubspot.mapping import Json, raise_for_response
from connectors.hubspot.settings import HubSpotSettings
from syncd.budget import TokenBucket
from syncd.remote import RemoteClient, Safety
from syncd.retry import RetryPolicy

CONTACTS = "/crm/v3/objects/contacts"
PROPERTIES = "/crm/v3/properties/contacts"
SEARCH = f"{CONTACTS}/search"
LIST_PAGE = 100  # List contacts: limit ≤ 100
SEARCH_PAGE = 200  # Search: limit ≤ 200
BATCH = 100  # batch read: ≤ 100 inputs


class HubSpotClient(RemoteClient):
    """Async client for one HubSpot account. Use as `async with HubSpotClient(settings) as hs:`."""

    def __init__(
        self,
        settings: HubSpotSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        budget: TokenBucket | None = None,
        search_budget: TokenBucket | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(
            remote=settings.name,
            base_url=settings.base_url,
            config_key=f"connectors.{settings.name}",
            check=lambda response, account: raise_for_response(
                response, remote=settings.name, account=account
            ),
            timeout=settings.timeout_seconds,
            budget=budget or TokenBucket(settings.requests_per_minute),
            retry=retry,
            transport=transport,
            headers={"authorization": f"Bearer {settings.access_token.get_secret_value()}"},
        )
        self.settings = settings
        self.search_budget = search_budget or TokenBucket(settings.search_requests_per_second * 60)

    # -- contacts ------------------------------------------------------------------------------

    async def get_contact(
        self,
        contact_id: str,
        properties: Iterable[str],
        *,
        with_history: Iterable[str] = (),
        id_property: str | None = None,
    ) -> Json:
        """One contact by id (or by a unique property); NotFoundError if there is none."""
        params = {"properties": ",".join(properties)}
        if history := ",".join(with_history):
            params["propertiesWithHistory"] = history
        if id_property:
            params["idProperty"] = id_property
        path = f"{CONTACTS}/{quote(contact_id, safe='@')}"
        return await self.call("GET", path, params=params, account=contact_id)

    async def list_contacts(
        self, properties: Iterable[str], *, after: str | None = None
    ) -> tuple[list[Json], str | None]:
        """One page of contacts (by id) and the `after` of the next page, None after the last."""
        params = {"limit": str(LIST_PAGE), "properties": ",".join(properties)}
        if after:
            params["after"] = after
        body = await self.call("GET", CONTACTS, params=params)
        return list(body.get("results") or []), _next_after(body)

    async def search(
        self,
        filters: Sequence[Json],
        properties: Iterable[str],
        *,
        sorts: Sequence[Json] = (),
        after: str | None = None,
        limit: int = SEARCH_PAGE,
    ) -> tuple[list[Json], str | None]:
        """One page of contacts matching every filter, and the `after` of the next page."""
        payload: Json = {
            "filterGroups": [{"filters": list(filters)}],
            "properties": list(properties),
            "limit": min(limit, SEARCH_PAGE),
        }
        if sorts:
            payload["sorts"] = list(sorts)
        if after:
            payload["after"] = after
        await self.search_budget.acquire()  # HubSpot's own limit for search, on top of the rest
        body = await self.call("POST", SEARCH, json=payload)
        return list(body.get("results") or []), _next_after(body)

    async def read_contacts(
        self, contact_ids: Sequence[str], properties: Iterable[str], with_history: Iterable[str]
    ) -> list[Json]:
        """The contacts that exist among `contact_ids`, with the history of `with_history`."""
        found: list[Json] = []
        wanted, history = list(properties), list(with_history)
        for start in range(0, len(contact_ids), BATCH):
            payload = {
                "inputs": [{"id": i} for i in contact_ids[start : start + BATCH]],
                "properties": wanted,
                "propertiesWithHistory": history,
            }
            body = await self.call("POST", f"{CONTACTS}/batch/read", json=payload)
            found += body.get("results") or []
        return found

    async def create_contact(self, properties: Mapping[str, str]) -> Json:
        """A new contact; DuplicateError (with the existing id) when its email is taken."""
        payload = {"properties": dict(properties)}
        return await self.call("POST", CONTACTS, json=payload, safety=Safety.KEYED)

    async def update_contact(self, contact_id: str, properties: Mapping[str, str]) -> Json:
        """Set properties of one contact in one request; sent once (see the module docstring)."""
        payload = {"properties": dict(properties)}
        path = f"{CONTACTS}/{quote(contact_id, safe='')}"
        return await self.call("PATCH", path, json=payload, account=contact_id, safety=Safety.ONCE)

    # -- properties ----------------------------------------------------------------------------

    async def get_property(self, name: str) -> Json:
        """A contact property's definition; NotFoundError when there is no such property."""
        return await self.call("GET", f"{PROPERTIES}/{quote(name, safe='')}")

    async def create_property(self, definition: Mapping[str, object]) -> Json:
        """A new contact property (a repeat answers 409: it exists)."""
        return await self.call("POST", PROPERTIES, json=dict(definition), safety=Safety.KEYED)


def _next_after(body: Json) -> str | None:
    after = ((body.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after else None
