"""The HubSpot CRM routes, on the paths the official `hubspot-api-client` calls.

GET    /crm/v3/properties/contacts                 {"results": [property]}
POST   /crm/v3/properties/contacts                 201 property; 409 CONFLICT if it exists
GET    /crm/v3/properties/contacts/{name}          property; 404 OBJECT_NOT_FOUND
GET    /crm/v3/objects/contacts                    ?limit<=100 (<=50 with history)&after=
                                                   &properties=&propertiesWithHistory=&archived=
                                                   -> {"results", "paging"?: {"next":
                                                   {"after", "link"}}}; `after` is the next id
POST   /crm/v3/objects/contacts                    201 contact; 409 "Contact already exists.
                                                   Existing ID: n" (CONFLICT)
POST   /crm/v3/objects/contacts/search             see `search`
POST   /crm/v3/objects/contacts/batch/read|update|upsert   see `batch`
POST   /crm/v3/objects/contacts/merge              {"primaryObjectId", "objectIdToMerge"}
GET    /crm/v3/objects/contacts/{id}               ?properties=&propertiesWithHistory=
                                                   &idProperty=&archived=
PATCH  /crm/v3/objects/contacts/{id}               {"properties": {...}} (?idProperty=)
DELETE /crm/v3/objects/contacts/{id}               204: archived (contact.deletion)

List parameters may repeat (`?properties=a&properties=b`, as the SDK sends) or hold commas.
A read shows the properties asked for (unknown names are ignored) plus createdate,
hs_object_id and lastmodifieddate, or HubSpot's defaults when none are asked for.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.hubspot.emulator import batch
from connectors.hubspot.emulator.errors import validation_error
from connectors.hubspot.emulator.search import search
from connectors.hubspot.emulator.state import ContactState
from connectors.hubspot.emulator.wire import (
    Json,
    query_flag,
    query_limit,
    query_names,
    read_json,
    text,
)
from syncd.sandbox.gate import Gate

PROPERTIES = "/crm/v3/properties/contacts"
CONTACTS = "/crm/v3/objects/contacts"
LIST_MAX, LIST_MAX_WITH_HISTORY, LIST_DEFAULT = 100, 50, 10


def build_routes(state: ContactState, gate: Gate) -> list[Route]:
    """Every API route of the emulator, each wrapped by the gate."""

    def known() -> set[str]:
        return set(state.properties.defined)

    async def list_properties(request: Request) -> Json:
        with state.lock:
            return {"results": [p.wire() for p in state.properties.defined.values()]}

    async def create_property(request: Request) -> Response:
        body = await read_json(request)
        with state.lock:
            created = state.properties.create(body, state.clock())
            return JSONResponse(created.wire(), status_code=201)

    async def get_property(request: Request) -> Json:
        with state.lock:
            return state.properties.get(request.path_params["name"]).wire()

    async def list_contacts(request: Request) -> Json:
        history = query_names(request, "propertiesWithHistory")
        maximum = LIST_MAX_WITH_HISTORY if history else LIST_MAX
        limit = query_limit(request, default=LIST_DEFAULT, maximum=maximum)
        after = request.query_params.get("after")
        if after is not None and not after.isdigit():
            raise validation_error(f"Invalid value '{after}' for query parameter 'after'.")
        shown = query_names(request, "properties")
        with state.lock:
            everyone = state.archived() if query_flag(request, "archived") else state.live()
            rest = [c for c in everyone if after is None or int(c.id) >= int(after)]
            page = [c.wire(shown, history, known=known()) for c in rest[:limit]]
        answer: Json = {"results": page}
        if len(rest) > limit:
            next_id = rest[limit].id
            link = str(request.url.include_query_params(after=next_id))
            answer["paging"] = {"next": {"after": next_id, "link": link}}
        return answer

    async def create_contact(request: Request) -> Response:
        body = await read_json(request)
        with state.lock:
            values = state.properties.normalize(body.get("properties"))
            contact = state.create(values, state.api)
            return JSONResponse(contact.wire(list(values), known=known()), status_code=201)

    async def search_contacts(request: Request) -> Json:
        body = await read_json(request)
        with state.lock:
            return search(
                list(state.contacts.values()),
                state.properties,
                body,
                now=state.clock(),
                lag_seconds=state.knobs.search_lag_seconds,
                max_results=state.knobs.search_max_results,
            )

    async def batch_read(request: Request) -> Response:
        body = await read_json(request)
        status, answer = batch.batch_read(state, body, archived=query_flag(request, "archived"))
        return JSONResponse(answer, status_code=status)

    async def batch_update(request: Request) -> Response:
        status, answer = batch.batch_update(state, await read_json(request))
        return JSONResponse(answer, status_code=status)

    async def batch_upsert(request: Request) -> Response:
        status, answer = batch.batch_upsert(state, await read_json(request))
        return JSONResponse(answer, status_code=status)

    async def merge(request: Request) -> Json:
        body = await read_json(request)
        primary_id = text(body.get("primaryObjectId"), "primaryObjectId")
        secondary_id = text(body.get("objectIdToMerge"), "objectIdToMerge")
        with state.lock:
            primary = state.find(primary_id)
            merged = state.merge(primary, state.find(secondary_id), state.api)
            return merged.wire([], known=known())

    async def get_contact(request: Request) -> Json:
        with state.lock:
            contact = state.find(
                request.path_params["contact_id"],
                request.query_params.get("idProperty"),
                archived=query_flag(request, "archived"),
            )
            return contact.wire(
                query_names(request, "properties"),
                query_names(request, "propertiesWithHistory"),
                known=known(),
            )

    async def update_contact(request: Request) -> Json:
        body = await read_json(request)
        with state.lock:
            values = state.properties.normalize(body.get("properties"))
            contact = state.find(
                request.path_params["contact_id"], request.query_params.get("idProperty")
            )
            state.update(contact, values, state.api)
            return contact.wire(list(values), known=known())

    async def archive_contact(request: Request) -> Response:
        with state.lock:
            state.archive(state.find(request.path_params["contact_id"]), state.api)
        return Response(status_code=204)

    return [
        gate.route("GET", PROPERTIES, list_properties),
        gate.route("POST", PROPERTIES, create_property),
        gate.route("GET", f"{PROPERTIES}/{{name}}", get_property),
        gate.route("GET", CONTACTS, list_contacts),
        gate.route("POST", CONTACTS, create_contact),
        gate.route("POST", f"{CONTACTS}/search", search_contacts, commits=False),
        gate.route("POST", f"{CONTACTS}/batch/read", batch_read, commits=False),
        gate.route("POST", f"{CONTACTS}/batch/update", batch_update),
        gate.route("POST", f"{CONTACTS}/batch/upsert", batch_upsert),
        gate.route("POST", f"{CONTACTS}/merge", merge),
        gate.route("GET", f"{CONTACTS}/{{contact_id}}", get_contact),
        gate.route("PATCH", f"{CONTACTS}/{{contact_id}}", update_contact),
        gate.route("DELETE", f"{CONTACTS}/{{contact_id}}", archive_contact),
    ]
