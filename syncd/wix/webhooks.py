"""Verify and parse a Wix webhook: an RS256 JWT around two layers of JSON.

    body = JWT(RS256, claims {"data": <outer JSON string>, "iat", "exp"})
    outer = {"eventType", "instanceId", "data": <inner JSON string>, "identity", "accountInfo"}
    inner = {"id", "entityFqdn", "slug", "entityId", "eventTime", one of
             "createdEvent" | "updatedEvent" | "actionEvent" | "deletedEvent"}

The algorithm is pinned to RS256; `exp` is required, and it, `nbf` and `iat` are checked against
the `now` passed in (`nbf` and `iat` may be at most `CLOCK_SKEW_SECONDS` ahead of it). Every
failure raises `WebhookRejected` with the check that failed; nothing else escapes.
Payload values are hints only: syncd re-reads the account before writing anything.

The compact JWS is checked here, with `cryptography`, by the rules PyJWT applies (canonical
base64url segments, a JSON-object header naming RS256, a string `kid`, no `aud` since none is
expected, string `sub`/`jti`), and stricter in one way: no JWS extension is understood, so a
`crit` or `b64` header is refused. PyJWT itself checks each segment's alphabet one character
at a time in Python, which cost more than the RSA signature check (webhook intake's budget).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from syncd.errors import WebhookRejected
from syncd.keys import load_public_key

__all__ = ["WixEvent", "load_public_key", "verify"]
from syncd.wix.models import parse_time

ALGORITHM = "RS256"
MAX_BODY_BYTES = 256 * 1024
CLOCK_SKEW_SECONDS = 300  # how far Wix's clock may run ahead of ours (nbf, iat)
_SEGMENT = re.compile(rb"[A-Za-z0-9_-]*={0,2}")  # base64url; trailing padding tolerated


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

    @property
    def balance(self) -> int | None:
        """The account's points balance the event carries (`points.balance` of the account
        created, updated or acted on; a hint for echo suppression), when it carries one."""
        if self.account_id is None or self.slug == "deleted":
            return None
        points = self.entity.get("points")
        value = points.get("balance") if isinstance(points, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None


def verify(raw_body: bytes, public_key: RSAPublicKey, *, now: datetime) -> WixEvent:
    """Check the body's signature and expiry, then parse its three layers into a WixEvent."""
    if len(raw_body) > MAX_BODY_BYTES:
        raise WebhookRejected("body too large")
    try:
        token = raw_body.decode("ascii").strip().encode("ascii")
    except UnicodeDecodeError:
        raise WebhookRejected("body is not a JWT") from None
    claims = _signed_claims(token, public_key)
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


def _signed_claims(token: bytes, public_key: RSAPublicKey) -> dict[str, Any]:
    """The claims of a compact JWS whose RS256 signature by `public_key` checks out."""
    parts = token.split(b".")
    if len(parts) != 3:
        raise WebhookRejected("bad signature or token: not three segments")
    header = _json_segment(parts[0], "header")
    if header.get("alg") != ALGORITHM:
        raise WebhookRejected(f"bad signature or token: the alg is not {ALGORITHM}")
    if "crit" in header or "b64" in header:
        raise WebhookRejected(
            "bad signature or token: a JWS extension (crit, b64) is not supported"
        )
    if not isinstance(header.get("kid", ""), str):
        raise WebhookRejected("bad signature or token: kid is not a string")
    signature = _segment(parts[2], "signature")
    try:
        public_key.verify(
            signature, parts[0] + b"." + parts[1], padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        raise WebhookRejected("bad signature or token: the signature does not verify") from None
    claims = _json_segment(parts[1], "payload")
    if "exp" not in claims:
        raise WebhookRejected("bad signature or token: no exp claim")
    if claims.get("aud"):
        raise WebhookRejected("bad signature or token: an audience (aud) syncd does not expect")
    for name in ("sub", "jti"):
        if not isinstance(claims.get(name, ""), str):
            raise WebhookRejected(f"bad signature or token: {name} is not a string")
    return claims


def _segment(segment: bytes, what: str) -> bytes:
    """One base64url segment, decoded; only its canonical encoding is accepted."""
    stripped = segment.rstrip(b"=")
    if (
        not _SEGMENT.fullmatch(segment)
        or len(stripped) % 4 == 1
        or (stripped != segment and len(segment) % 4)
    ):
        raise WebhookRejected(f"bad signature or token: the {what} is not base64url")
    try:
        decoded = base64.urlsafe_b64decode(stripped + b"=" * (-len(stripped) % 4))
    except binascii.Error:
        raise WebhookRejected(f"bad signature or token: the {what} is not base64url") from None
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != stripped:
        raise WebhookRejected(f"bad signature or token: the {what} is not canonical base64url")
    return decoded


def _json_segment(segment: bytes, what: str) -> dict[str, Any]:
    """A JWS header or payload: a JSON object."""
    try:
        value = json.loads(_segment(segment, what))
    except (ValueError, RecursionError):  # RecursionError: nested too deeply to read
        raise WebhookRejected(f"bad signature or token: the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise WebhookRejected(f"bad signature or token: the {what} is not a JSON object")
    return value


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
