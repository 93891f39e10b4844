"""`raise_for_response`: every Wix answer mapped into syncd's one error tree."""

from __future__ import annotations

from typing import Any

import httpx

from syncd.errors import (
    ConflictError,
    DuplicateError,
    FatalError,
    NotFoundError,
    PreconditionError,
    RateLimitedError,
    RemoteError,
    RetriableError,
    SkipError,
)
from syncd.remote import request_id, retry_after

REMOTE = "wix"
REQUEST_ID_HEADERS = ("x-wix-request-id", "x-request-id")


def raise_for_response(response: httpx.Response, *, account: str | None = None) -> None:
    """Return if the answer is a success; otherwise raise the error that says what to do next."""
    if response.is_success:
        return
    status = response.status_code
    body = _json(response)
    application = (body.get("details") or {}).get("applicationError") or {}
    code = application.get("code") or None
    message = str(body.get("message") or application.get("description") or response.reason_phrase)
    kw: dict[str, Any] = {
        "remote": REMOTE,
        "status": status,
        "code": code,
        "request_id": request_id(response, REQUEST_ID_HEADERS),
        "account": account,
    }
    error: RemoteError
    if status == 429:
        error = RateLimitedError(message, retry_after=retry_after(response), **kw)
    elif status >= 500:
        error = RetriableError(message or "server error", **kw)
    elif status in (401, 403):
        hint = "check wix.api_key / wix.site_id or the app's permissions"
        error = FatalError(f"{message}: {hint}", **kw)
    elif status == 404:
        error = NotFoundError(message, **kw)
    elif code == "DUPLICATE_CONTACT_EXISTS":
        data = application.get("data") or {}
        error = DuplicateError(message, existing_id=data.get("duplicateContactId"), **kw)
    elif status == 409:
        error = ConflictError(message, **kw)
    elif status in (412, 428):
        error = PreconditionError(message, **kw)
    else:
        error = SkipError(message, **kw)
    raise error


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
