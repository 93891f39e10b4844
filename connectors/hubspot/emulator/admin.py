"""The HubSpot emulator's admin routes: the shared ones (`syncd.sandbox.admin`) and HubSpot's
own. No auth, no rate limit, no faults. JSON in, JSON out; refusals in HubSpot's error body.

GET   /_sandbox/knobs               every knob (see `connectors.hubspot.emulator`), plus "seed"
PATCH /_sandbox/knobs               partial update, nested: {"faults": {"error_rate": 0.2}}
                                    ({"seed": n} re-seeds every random generator)
POST  /_sandbox/reset               no contacts, webhooks, stats or counted requests; the
                                    standard properties (and the points property if defined at
                                    start) only ({"knobs": true} also restores the knobs)
POST  /_sandbox/seed                {"count": n} or {"contacts": [{email, phone, name,
                                    balance}]} -> {"results": [contact]} (no webhooks)
GET   /_sandbox/contacts            {"results": [contact]} every live contact, all values
GET   /_sandbox/contacts/{id}       contact (404 OBJECT_NOT_FOUND)
PUT   /_sandbox/contacts/{id}/points  {"points": n}: an edit in HubSpot's UI (CRM_UI history,
                                    contact.propertyChange) -> contact
POST  /_sandbox/contacts/{id}/points  {"delta": n}: the same, adding n -> contact
PATCH /_sandbox/contacts/{id}       {"properties": {...}}: any edit in HubSpot's UI -> contact
GET   /_sandbox/contacts/{id}/history/{property}  {"results": [entry]} newest first
POST  /_sandbox/merge               {"primary_id", "secondary_id"} (contact.merge) -> contact
DELETE /_sandbox/contacts/{id}      archived from HubSpot's UI (contact.deletion) -> {}
GET   /_sandbox/stats               requests per route, statuses, 429s, injected faults
PUT   /_sandbox/webhooks            {"url", "target_url"?, "client_secret"?}
POST  /_sandbox/webhooks/flush      close the open batch, send everything queued now
                                    -> {"attempts": [...]}
GET   /_sandbox/webhooks/log        {"url", "target_url", "subscriptions", "pending",
                                    "dropped", "attempts", "events"} (events are batches)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.routing import Route

from connectors.hubspot.emulator.errors import validation_error
from connectors.hubspot.emulator.wire import Json, read_json
from syncd.sandbox.admin import AdminDialect
from syncd.sandbox.admin import build_admin_routes as shared_admin_routes

if TYPE_CHECKING:
    from connectors.hubspot.emulator import HubSpotEmulator


def integer(value: Any, field: str) -> int:
    """A required integer field."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise validation_error(f"`{field}` must be an integer.")
    return value


def optional_text(value: Any, field: str) -> str | None:
    """An optional string field."""
    if value is not None and not isinstance(value, str):
        raise validation_error(f"`{field}` must be a string.")
    return value


DIALECT = AdminDialect(
    read_json=read_json,
    bad_knobs=validation_error,
    read_int=integer,
)


def build_admin_routes(emulator: HubSpotEmulator) -> list[Route]:
    """The `/_sandbox/...` routes of one emulator."""
    hooks = emulator.webhooks

    def contact_id(request: Request) -> str:
        return str(request.path_params["contact_id"])

    async def seed(request: Request) -> Json:
        body = await read_json(request)
        specs: Any = body.get("contacts")
        if specs is None:
            specs = integer(body.get("count", 10), "count")
        elif not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
            raise validation_error("`contacts` must be a list of objects.")
        return {"results": emulator.seed_contacts(specs)}

    async def contacts(request: Request) -> Json:
        return {"results": emulator.contacts()}

    async def contact(request: Request) -> Json:
        return emulator.contact(contact_id(request))

    async def set_points(request: Request) -> Json:
        body = await read_json(request)
        emulator.set_points(contact_id(request), integer(body.get("points"), "points"))
        return emulator.contact(contact_id(request))

    async def add_points(request: Request) -> Json:
        body = await read_json(request)
        emulator.add_points(contact_id(request), integer(body.get("delta"), "delta"))
        return emulator.contact(contact_id(request))

    async def edit(request: Request) -> Json:
        body = await read_json(request)
        emulator.edit(contact_id(request), body.get("properties"))
        return emulator.contact(contact_id(request))

    async def history(request: Request) -> Json:
        name = str(request.path_params["name"])
        return {"results": emulator.history(contact_id(request), name)}

    async def merge(request: Request) -> Json:
        body = await read_json(request)
        primary = optional_text(body.get("primary_id"), "primary_id") or ""
        secondary = optional_text(body.get("secondary_id"), "secondary_id") or ""
        emulator.merge(primary, secondary)
        return emulator.contact(primary)

    async def archive(request: Request) -> Json:
        emulator.archive(contact_id(request))
        return {}

    async def put_webhooks(request: Request) -> Json:
        body = await read_json(request)
        hooks.url = optional_text(body.get("url"), "url")
        if "target_url" in body:
            hooks.target_url = optional_text(body.get("target_url"), "target_url")
        secret = optional_text(body.get("client_secret"), "client_secret")
        if secret:
            hooks.client_secret = secret
        return {"url": hooks.url, "target_url": hooks.signed_url}

    return shared_admin_routes(
        emulator,
        DIALECT,
        [
            ("POST", "seed", seed),
            ("GET", "contacts", contacts),
            ("GET", "contacts/{contact_id}", contact),
            ("PUT", "contacts/{contact_id}/points", set_points),
            ("POST", "contacts/{contact_id}/points", add_points),
            ("PATCH", "contacts/{contact_id}", edit),
            ("GET", "contacts/{contact_id}/history/{name}", history),
            ("POST", "merge", merge),
            ("DELETE", "contacts/{contact_id}", archive),
            ("PUT", "webhooks", put_webhooks),
        ],
    )
