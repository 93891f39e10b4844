"""Verify and parse a Wix webhook: an RS256 JWT around two layers of JSON.

    body = JWT(RS256, claims {"data": <outer JSON string>, "iat", "exp"})
    outer = {"eventType", "instanceId", "data": <inner JSON string>, "identity", "accountInfo"}
    inner = {"id", "entityFqdn", "slug", "entityId", "eventTime", one of
             "createdEvent" | "updatedEvent" | "actionEvent" | "deletedEvent"}

The algorithm is pinned to RS256; `exp` is required, and it, `nbf` and `iat` are checked against
the `now` passed in (`nbf` and `iat` may be at most `CLOCK_SKEW_SECONDS` ahead of it). Every
failure raises `WebhookRejected` with the check that failed; nothing else escapes.
Payload values are hints only: syncd re-reads the account before writing anything.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from syncd.errors import WebhookRejected
from syncd.keys import load_public_key

__all__ = ["WixEvent", "load_public_key", "verify"]
from syncd.wix.models import parse_time

ALGORITHM = "RS256"
MAX_BODY_BYTES = 256 * 1024
CLOCK_SKEW_SECONDS = 300  # how far Wix's clock may run ahead of ours (nbf, iat)


@dataclass(frozen=True)
class WixEvent:
    """One verified Wix event; `entity` is the account or program it carries (a hint)."""

    event_id: str
    event_type: str
    instance_id: str | None
    entity_fqdn: str | None
    slug: str | None
    entity_id: str | None
    event_time: datetime | None
    entity: dict[str, Any]

    @property
    def account_id(self) -> str | None:
        """The loyalty account this event is about, when it is about one."""
        if self.entity_fqdn == "wix.loyalty.v1.account":
            return self.entity_id or self.entity.get("id")
        return None


def verify(raw_body: bytes, public_key: RSAPublicKey, *, now: datetime) -> WixEvent:
    """Check the body's signature and expiry, then parse its three layers into a WixEvent."""
    if len(raw_body) > MAX_BODY_BYTES:
        raise WebhookRejected("body too large")
    try:
        token = raw_body.decode("ascii").strip()
    except UnicodeDecodeError:
        raise WebhookRejected("body is not a JWT") from None
    try:
        claims = jwt.decode(
            token,
            key=public_key,
            algorithms=[ALGORITHM],
            # Times are checked below against `now`, not against this machine's clock.
            options={
                "require": ["exp"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.InvalidTokenError as exc:
        raise WebhookRejected(f"bad signature or token: {exc}") from None
    exp = claims.get("exp")
    if not _is_time(exp) or exp <= now.timestamp():
        raise WebhookRejected("token expired")
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is None:
            continue
        if not _is_time(value):
            raise WebhookRejected(f"{name} is not a time")
        if value > now.timestamp() + CLOCK_SKEW_SECONDS:
            raise WebhookRejected(f"token not valid yet ({name} is in the future)")
    outer = _json_layer(claims.get("data"), "data claim")
    inner = _json_layer(outer.get("data"), "event data")
    event_id = inner.get("id")
    event_type = outer.get("eventType")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
        raise WebhookRejected("event has no id or eventType")
    return WixEvent(
        event_id=event_id,
        event_type=event_type,
        instance_id=_str_or_none(outer.get("instanceId")),
        entity_fqdn=_str_or_none(inner.get("entityFqdn")),
        slug=_str_or_none(inner.get("slug")),
        entity_id=_str_or_none(inner.get("entityId")),
        event_time=_time_or_none(inner.get("eventTime")),
        entity=_entity(inner),
    )


def _json_layer(value: object, what: str) -> dict[str, Any]:
    """A layer arrives as a JSON string (or, tolerated, as an object already)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply to read
            raise WebhookRejected(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise WebhookRejected(f"{what} is not a JSON object")
    return value


def _entity(inner: dict[str, Any]) -> dict[str, Any]:
    """The record inside, wherever this event kind keeps it (object or *AsJson string)."""
    places = (
        ("createdEvent", ("entity", "entityAsJson")),
        ("updatedEvent", ("currentEntity", "currentEntityAsJson")),
        ("actionEvent", ("body", "bodyAsJson")),
        ("deletedEvent", ("deletedEntity", "deletedEntityAsJson")),
    )
    for kind, keys in places:
        section = inner.get(kind)
        if not isinstance(section, dict):
            continue
        for key in keys:
            if key in section:
                try:
                    found = _json_layer(section[key], f"{kind}.{key}")
                except WebhookRejected:
                    return {}
                # An action's body wraps the account: {"account": {...}}.
                account = found.get("account")
                return account if isinstance(account, dict) else found
    return {}


def _is_time(value: object) -> TypeGuard[int | float]:
    """A NumericDate: a finite number of seconds (JSON lets NaN and Infinity through)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _time_or_none(value: object) -> datetime | None:
    try:
        return parse_time(value)
    except ValueError:
        return None
