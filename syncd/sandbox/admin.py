"""The `/_sandbox/...` admin routes every emulator has: no auth, no rate limit, no faults.

GET   /_sandbox/knobs              every knob, plus "seed"
PATCH /_sandbox/knobs              partial update, nested: {"faults": {"error_rate": 0.2}}
                                   ({"seed": n} re-seeds every random generator)
POST  /_sandbox/reset              empty again ({"knobs": true} also restores their defaults)
GET   /_sandbox/stats              the request counters (`RequestStats.dump`)
POST  /_sandbox/webhooks/flush     send everything queued now -> {"attempts": [...]}
GET   /_sandbox/webhooks/log       the dispatcher's log plus every event's summary

A vendor adds its own (seed, activity, dumps, webhook target) and says, through its
`AdminDialect`, how it reads a body and refuses a bad one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.sandbox import knobs as knob_tools
from syncd.sandbox.emulator import SandboxEmulator
from syncd.sandbox.errors import ApiError

AdminHandler = Callable[[Request], Awaitable[Any]]  # a dict (sent as JSON) or a Response
VendorRoute = tuple[str, str, AdminHandler]  # (method, path under /_sandbox/, handler)


@dataclass(frozen=True)
class AdminDialect:
    """How one vendor reads admin requests and says no to them."""

    read_json: Callable[[Request], Awaitable[dict[str, Any]]]  # the body as an object, or 400
    bad_knobs: Callable[[str], ApiError]  # the 400 for a knob patch `knobs.patch` refused
    read_int: Callable[[Any, str], int]  # an integer field (value, field name), or 400


def admin_route(method: str, path: str, handler: AdminHandler) -> Route:
    """`/_sandbox/{path}`: the handler's dict as JSON, its Response as is, an ApiError as the
    vendor's error answer."""

    async def endpoint(request: Request) -> Response:
        try:
            result = await handler(request)
        except ApiError as error:
            return error.response()
        return result if isinstance(result, Response) else JSONResponse(result)

    return Route(f"/_sandbox/{path}", endpoint, methods=[method])


def build_admin_routes(
    emulator: SandboxEmulator[Any], dialect: AdminDialect, vendor: Iterable[VendorRoute]
) -> list[Route]:
    """The shared admin routes of `emulator` with the vendor's own in between."""
    hooks = emulator.webhooks

    async def get_knobs(request: Request) -> Any:
        return knob_tools.dump(emulator.knobs) | {"seed": emulator.seed}

    async def patch_knobs(request: Request) -> Any:
        body = await dialect.read_json(request)
        seed = body.pop("seed", None)
        try:
            knob_tools.patch(emulator.knobs, body)
        except knob_tools.KnobError as exc:
            raise dialect.bad_knobs(str(exc)) from exc
        if seed is not None:
            emulator.reseed(dialect.read_int(seed, "seed"))
        return await get_knobs(request)

    async def reset(request: Request) -> Any:
        body = await dialect.read_json(request)
        emulator.reset(knobs=body.get("knobs") is True)
        return {}

    async def stats(request: Request) -> Any:
        return emulator.stats.dump()

    async def flush(request: Request) -> Any:
        return {"attempts": [a.to_json() for a in await hooks.flush()]}

    async def log(request: Request) -> Any:
        return hooks.log() | {"events": [e.summary() for e in list(hooks.events)]}

    table: list[VendorRoute] = [
        ("GET", "knobs", get_knobs),
        ("PATCH", "knobs", patch_knobs),
        ("POST", "reset", reset),
        *vendor,
        ("GET", "stats", stats),
        ("POST", "webhooks/flush", flush),
        ("GET", "webhooks/log", log),
    ]
    return [admin_route(method, path, handler) for method, path, handler in table]
