"""HubSpot error answers: `{"status": "error", "message", "correlationId", "category",
"errors"?, "context"?}` with a matching HTTP status.

The correlation id in a body is the one in the answer's `X-HubSpot-Correlation-Id` header: the
app draws it when a request arrives (`new_correlation_id`) and keeps it in a context variable
for the rest of that request.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping
from typing import Any

from starlette.responses import JSONResponse

from syncd.sandbox.errors import ApiError

CORRELATION: contextvars.ContextVar[str] = contextvars.ContextVar("hubspot_correlation_id")
SERVER_MESSAGES = {
    500: "internal error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def correlation_ids(new_id: Callable[[], str]) -> Callable[[], str]:
    """An id source for the app's header that also marks the id as this request's."""

    def next_id() -> str:
        correlation_id = new_id()
        CORRELATION.set(correlation_id)
        return correlation_id

    return next_id


class HubSpotApiError(ApiError):
    """A refusal the emulator answers with `status` and a HubSpot error body."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        context: dict[str, list[str]] | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.category = category
        self.message = message
        self.errors = errors
        self.context = context
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})
        super().__init__(f"{status} {category}: {message}")

    def body(self) -> dict[str, Any]:
        """The JSON body HubSpot sends."""
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": CORRELATION.get(""),
            **self.extra,
        }
        if self.category:
            body["category"] = self.category
        if self.errors is not None:
            body["errors"] = self.errors
        if self.context is not None:
            body["context"] = self.context
        return body

    def response(self, headers: Mapping[str, str] | None = None) -> JSONResponse:
        """The answer, with this error's own headers and any extra ones."""
        return super().response({**self.headers, **(headers or {})})


def detail(message: str, code: str, **context: list[str]) -> dict[str, Any]:
    """One entry of an error's `errors` list (the SDK's ErrorDetail)."""
    entry: dict[str, Any] = {"message": message, "code": code}
    if context:
        entry["context"] = context
    return entry


def validation_error(message: str, errors: list[dict[str, Any]] | None = None) -> HubSpotApiError:
    """400 VALIDATION_ERROR."""
    return HubSpotApiError(400, "VALIDATION_ERROR", message, errors=errors)


def not_found(message: str) -> HubSpotApiError:
    """404 OBJECT_NOT_FOUND."""
    return HubSpotApiError(404, "OBJECT_NOT_FOUND", message)


def conflict(message: str) -> HubSpotApiError:
    """409 CONFLICT."""
    return HubSpotApiError(409, "CONFLICT", message)


def rate_limited(policy: str, message: str, headers: Mapping[str, str]) -> HubSpotApiError:
    """429 with HubSpot's rate-limit body (`errorType`, `policyName`; no category)."""
    return HubSpotApiError(
        429,
        "",
        message,
        extra={"errorType": "RATE_LIMIT", "policyName": policy},
        headers=headers,
    )


def server_error(status: int) -> HubSpotApiError:
    """An injected 5xx in HubSpot's body (category INTERNAL_ERROR: a guess)."""
    return HubSpotApiError(status, "INTERNAL_ERROR", SERVER_MESSAGES.get(status, "internal error"))
