"""HubSpot's wire shapes turned into syncd's values: errors, contacts, times, webhooks.

`raise_for_response` is the one place a HubSpot answer becomes syncd's error tree:

    429 SECONDLY (or no policy)     RateLimitedError: wait Retry-After, else the rate window
                                    (X-HubSpot-RateLimit-Interval-Milliseconds, at most 10 s)
                                    when -Remaining is 0, else a second (search's limit)
    429 DAILY                       RateLimitedError: wait an hour (the cap resets at midnight
                                    in the HubSpot account's time zone)
    5xx                             RetriableError (the client makes it OutcomeUnknownError
                                    for a write that may have landed)
    401                             FatalError: the access token
    403                             FatalError naming the scope to grant
    404                             NotFoundError
    409                             DuplicateError carrying the existing id ("Existing ID: 123")
    400 and the rest                SkipError with HubSpot's message
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from connectors.base import ExternalAccount, ExternalEvent
from syncd.errors import (
    DuplicateError,
    FatalError,
    NotFoundError,
    RateLimitedError,
    RemoteError,
    RetriableError,
    SkipError,
    WebhookRejected,
)
from syncd.names import join_name
from syncd.reconcile.keys import email_key, phone_key
from syncd.remote import request_id, retry_after

Json = dict[str, Any]
REQUEST_ID_HEADERS = ("x-hubspot-correlation-id", "x-request-id")
INTERVAL_HEADER = "x-hubspot-ratelimit-interval-milliseconds"
REMAINING_HEADER = "x-hubspot-ratelimit-remaining"
SECONDLY_WAIT_MAX = 10.0  # HubSpot's window is 10 s: after it, the window is clear
SECONDLY_WAIT_DEFAULT = 1.0
DAILY_WAIT = 3600.0
SAME_WRITE = timedelta(seconds=1)  # history stamps of the two properties of one PATCH
SIGNATURE_HEADER = "x-hubspot-signature-v3"
TIMESTAMP_HEADER = "x-hubspot-request-timestamp"
WEBHOOK_MAX_AGE = timedelta(minutes=5)
_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")


def raise_for_response(
    response: httpx.Response, *, remote: str, account: str | None = None
) -> None:
    """Return if the answer is a success; otherwise raise the error that says what to do next."""
    if response.is_success:
        return
    status = response.status_code
    body = _body(response)
    message = str(body.get("message") or response.reason_phrase or f"HTTP {status}")
    kw: dict[str, Any] = {
        "remote": remote,
        "status": status,
        "code": body.get("category") or body.get("errorType"),
        "request_id": body.get("correlationId") or request_id(response, REQUEST_ID_HEADERS),
        "account": account,
    }
    error: RemoteError
    if status == 429:
        error = _rate_limited(response, body, message, kw)
    elif status >= 500:
        error = RetriableError(message, **kw)
    elif status == 401:
        error = FatalError(
            f"{message}: check connectors.{remote}.access_token (a private app token; "
            "OAuth access tokens expire after 30 minutes)",
            **kw,
        )
    elif status == 403:
        scopes = ", ".join(_missing_scopes(response, body))
        error = FatalError(
            f"{message}: grant the scope {scopes} to the app of connectors.{remote}.access_token",
            **kw,
        )
    elif status == 404:
        error = NotFoundError(message, **kw)
    elif status == 409:
        found = _EXISTING_ID.search(message)
        error = DuplicateError(message, existing_id=found.group(1) if found else None, **kw)
    else:
        error = SkipError(message, **kw)
    raise error


def _rate_limited(
    response: httpx.Response, body: Json, message: str, kw: dict[str, Any]
) -> RateLimitedError:
    policy = body.get("policyName")
    kw["code"] = policy or kw["code"] or "RATE_LIMIT"
    if policy == "DAILY":
        cap = response.headers.get("x-hubspot-ratelimit-daily")
        spent = f"all {cap} calls" if cap else "every call"
        return RateLimitedError(
            f"HubSpot's daily API limit is reached ({spent} of today): syncd tries again "
            "hourly; the limit resets at midnight in the HubSpot account's time zone",
            retry_after=DAILY_WAIT,
            **kw,
        )
    wait = retry_after(response)
    if wait is None:
        # The 10 s window is full: wait it out. Otherwise it is search's per-second limit.
        interval = response.headers.get(INTERVAL_HEADER, "")
        spent = response.headers.get(REMAINING_HEADER) == "0"
        wait = SECONDLY_WAIT_DEFAULT
        if spent and interval.isdigit():
            wait = min(SECONDLY_WAIT_MAX, max(SECONDLY_WAIT_DEFAULT, int(interval) / 1000))
    return RateLimitedError(message, retry_after=wait, **kw)


def _missing_scopes(response: httpx.Response, body: Json) -> list[str]:
    """The scopes HubSpot says the call needs, or the ones it needs by its method and path."""
    contexts = [body.get("context")]
    contexts += [d.get("context") for d in body.get("errors") or [] if isinstance(d, dict)]
    named = [
        scope
        for context in contexts
        if isinstance(context, dict)
        for field in ("requiredGranularScopes", "requiredScopes")
        for scope in context.get(field) or []
        if isinstance(scope, str)
    ]
    if named:
        return list(dict.fromkeys(named))
    try:
        request = response.request
    except RuntimeError:  # a response built without a request
        return ["crm.objects.contacts.read", "crm.objects.contacts.write"]
    kind = "schemas" if "/properties/" in request.url.path else "objects"
    reading = request.method == "GET" or request.url.path.endswith(("/search", "/batch/read"))
    return [f"crm.{kind}.contacts.{'read' if reading else 'write'}"]


def _body(response: httpx.Response) -> Json:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# -- contacts ----------------------------------------------------------------------------------

CONTACT_PROPERTIES = ("email", "phone", "firstname", "lastname", "lastmodifieddate")


class InvalidPoints(ValueError):
    """The points property holds something that is not a whole number."""


def parse_points(value: object) -> int:
    """The points property as an int: missing or empty is 0, "120.0" is 120."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidPoints(f"{value!r} is not a number") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise InvalidPoints(f"{value!r} is not a whole number of points")
    return int(number)


def to_account(contact: Json, points_property: str) -> ExternalAccount:
    """A contact as syncd sees it; InvalidPoints when its points are not a whole number."""
    properties = contact.get("properties") or {}
    return ExternalAccount(
        id=str(contact["id"]),
        balance=parse_points(properties.get(points_property)),
        email=email_key(properties.get("email")),
        phone=phone_key(properties.get("phone")),
        name=full_name(properties),
        version=properties.get("lastmodifieddate") or contact.get("updatedAt"),
    )


def full_name(properties: Json) -> str | None:
    """ "First Last" from a contact's properties, or None when it has neither."""
    return join_name(properties.get("firstname"), properties.get("lastname"))


# -- operations and history --------------------------------------------------------------------


def operation_value(key: str, points: int) -> str:
    """What the operation property holds after syncd's write `key` set the points."""
    return f"{key}:{points}"


def operation_parts(value: str) -> tuple[str, int | None]:
    """The (key, points) an operation property value records; points None when unreadable."""
    key, _, points = value.rpartition(":")
    try:
        return key, int(points)
    except ValueError:
        return key, None


@dataclass(frozen=True)
class Version:
    """One entry of a property's history (HubSpot lists them newest first)."""

    value: str
    at: datetime

    @classmethod
    def from_wire(cls, entry: Json) -> Version:
        return cls(str(entry.get("value") or ""), parse_time(str(entry["timestamp"])))


def history(contact: Json, name: str) -> list[Version]:
    """The history of one property from an answer asked with `propertiesWithHistory`."""
    entries = (contact.get("propertiesWithHistory") or {}).get(name) or []
    return [Version.from_wire(e) for e in entries if isinstance(e, dict) and e.get("timestamp")]


def parse_time(value: str) -> datetime:
    """An ISO 8601 timestamp (Z or an offset) or epoch milliseconds, as an aware UTC datetime."""
    if value.isdigit():
        return from_ms(int(value))
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds, as HubSpot's search filters take dates."""
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def modified_ms(contact: Json) -> int:
    """A contact's lastmodifieddate in epoch milliseconds (0 when it has none)."""
    value = (contact.get("properties") or {}).get("lastmodifieddate") or contact.get("updatedAt")
    return to_ms(parse_time(str(value))) if value else 0


def overwritten(
    contact: Json, points_property: str, read: int, read_at: datetime | None, ours: Version
) -> int:
    """The change an edit made between syncd reading `read` (its newest history entry at
    `read_at`) and syncd's write `ours`, which overwrote it; 0 when there was none."""
    lost = [
        v
        for v in history(contact, points_property)
        if (read_at is None or v.at > read_at) and v.at < ours.at
    ]
    if not lost:
        return 0
    return parse_points(max(lost, key=lambda v: v.at).value) - read


def looks_ours(contact: Json, points_property: str, operation_property: str) -> bool:
    """Whether the points equal the value syncd's last write recorded beside them."""
    properties = contact.get("properties") or {}
    recorded = operation_parts(str(properties.get(operation_property) or ""))[1]
    try:
        return recorded is not None and recorded == parse_points(properties.get(points_property))
    except InvalidPoints:
        return False


def edited_by_others(
    contact: Json, points_property: str, operation_property: str, *, since: datetime
) -> bool:
    """Whether the points history since `since` holds a value syncd's writes did not set (each
    write set points and operation property in one request: same value, same moment)."""
    ours = [(v.at, operation_parts(v.value)[1]) for v in history(contact, operation_property)]
    for version in history(contact, points_property):
        if version.at < since:
            continue
        try:
            points: int | None = parse_points(version.value)
        except InvalidPoints:
            return True
        if not any(value == points and abs(at - version.at) <= SAME_WRITE for at, value in ours):
            return True
    return False


# -- webhooks ----------------------------------------------------------------------------------

# The characters HubSpot decodes in the URL before signing (signature v3).
_URL_DECODES = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_ESCAPE = re.compile("|".join(_URL_DECODES), re.IGNORECASE)


def signature_v3(secret: str, method: str, url: str, raw_body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(client secret, method + decoded URL + raw body + timestamp))."""
    decoded = _ESCAPE.sub(lambda m: _URL_DECODES[m.group(0).upper()], url)
    message = method.encode() + decoded.encode() + raw_body + timestamp.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


_EVENT_FIELDS = ("subscriptionId", "objectId", "occurredAt", "subscriptionType")
# HubSpot's eventId is not unique: these together name one event (the fact sheet).
_DEDUPE_FIELDS = ("subscriptionId", "objectId", "propertyName", "propertyValue", "occurredAt")


def verify_webhook(
    raw_body: bytes, headers: Mapping[str, str], *, secret: str, url: str, now: datetime
) -> list[ExternalEvent]:
    """The contact events of a webhook POSTed to `url`, signed (v3) with the app's `secret`
    no more than 5 minutes from `now`; WebhookRejected naming the check that failed."""
    lowered = {k.lower(): v for k, v in headers.items()}
    given = lowered.get(SIGNATURE_HEADER, "").strip()
    stamp = lowered.get(TIMESTAMP_HEADER, "").strip()
    if not given or not stamp:
        raise WebhookRejected(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 16):
        raise WebhookRejected(f"{TIMESTAMP_HEADER} is not epoch milliseconds")
    off = abs(to_ms(now) - int(stamp)) / 1000
    if off > WEBHOOK_MAX_AGE.total_seconds():
        raise WebhookRejected(
            f"{TIMESTAMP_HEADER} is {off:.0f} s from now (at most 300): a replay, or a wrong clock"
        )
    expected = signature_v3(secret, "POST", url, raw_body, stamp)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise WebhookRejected(
            "signature does not match (check client_secret and that webhook_url is exactly "
            "the target URL registered at HubSpot)"
        )
    return parse_events(raw_body)


def parse_events(raw_body: bytes) -> list[ExternalEvent]:
    """The contact events of a (verified) body; events of other objects are left out."""
    try:
        body: Any = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError, binascii.Error, RecursionError):
        raise WebhookRejected("body is not JSON (or nested too deeply)") from None
    if not isinstance(body, list) or not all(isinstance(e, dict) for e in body):
        raise WebhookRejected("body is not a JSON array of events")
    return [event for item in body if (event := _event(item)) is not None]


def _event(item: Json) -> ExternalEvent | None:
    missing = [f for f in _EVENT_FIELDS if item.get(f) is None]
    if missing:
        raise WebhookRejected(f"an event lacks {', '.join(missing)}")
    kind = str(item["subscriptionType"])
    if not kind.startswith("contact."):
        return None
    parts = [item.get(f) for f in _DEDUPE_FIELDS]
    event_id = ":".join("" if p is None else str(p) for p in parts)
    if kind != "contact.merge":
        return ExternalEvent(event_id, kind, str(item["objectId"]))
    primary, merged = item.get("primaryObjectId"), item.get("mergedObjectIds")
    if primary is None or not isinstance(merged, list):
        raise WebhookRejected("a contact.merge event lacks primaryObjectId or mergedObjectIds")
    others = tuple(str(i) for i in merged if str(i) != str(primary))
    return ExternalEvent(event_id, kind, str(primary), merged_ids=others)
