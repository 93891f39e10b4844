"""Square error answers: `{"errors": [{category, code, detail, field?}]}` with a matching status."""

from __future__ import annotations

from typing import Any

from syncd.sandbox.errors import ApiError

# Every code the emulator answers on its own (knobs may add others); each is in the SDK's
# ErrorCode enum, which the conformance test checks.
CODES = frozenset(
    {
        "BAD_REQUEST",
        "NOT_FOUND",
        "CONFLICT",
        "IDEMPOTENCY_KEY_REUSED",
        "INVALID_PHONE_NUMBER",
        "INVALID_EMAIL_ADDRESS",
        "RATE_LIMITED",
        "UNAUTHORIZED",
        "ACCESS_TOKEN_EXPIRED",
        "VALUE_TOO_HIGH",
        "VALUE_TOO_LOW",
        "VALUE_TOO_LONG",
        "VALUE_TOO_SHORT",
        "INVALID_CURSOR",
        "INVALID_TIME",
        "INVALID_ENUM_VALUE",
        "MISSING_REQUIRED_PARAMETER",
        "EXPECTED_JSON_BODY",
        "EXPECTED_INTEGER",
        "EXPECTED_STRING",
        "EXPECTED_OBJECT",
        "EXPECTED_ARRAY",
        "EXPECTED_BOOLEAN",
        "INTERNAL_SERVER_ERROR",
        "SERVICE_UNAVAILABLE",
        "GATEWAY_TIMEOUT",
    }
)
SERVER_CODES = {500: "INTERNAL_SERVER_ERROR", 503: "SERVICE_UNAVAILABLE", 504: "GATEWAY_TIMEOUT"}


def category_for(status: int) -> str:
    """Square's error category for an HTTP status."""
    if status in (401, 403):
        return "AUTHENTICATION_ERROR"
    if status == 429:
        return "RATE_LIMIT_ERROR"
    if status >= 500:
        return "API_ERROR"
    return "INVALID_REQUEST_ERROR"


class SquareApiError(ApiError):
    """A refusal the emulator answers with `status` and a Square error body."""

    def __init__(self, status: int, code: str, detail: str, *, field: str | None = None) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
        super().__init__(f"{status} {code}: {detail}")

    def body(self) -> dict[str, Any]:
        """The JSON body Square sends."""
        error: dict[str, Any] = {
            "category": category_for(self.status),
            "code": self.code,
            "detail": self.detail,
        }
        if self.field:
            error["field"] = self.field
        return {"errors": [error]}


def bad_request(
    detail: str, *, code: str = "BAD_REQUEST", field: str | None = None
) -> SquareApiError:
    """400 INVALID_REQUEST_ERROR."""
    return SquareApiError(400, code, detail, field=field)


def not_found(what: str, object_id: str) -> SquareApiError:
    """404 NOT_FOUND for a missing object."""
    return SquareApiError(404, "NOT_FOUND", f"{what} `{object_id}` not found.")


def server_error(status: int) -> SquareApiError:
    """A 5xx with Square's API_ERROR body."""
    code = SERVER_CODES.get(status, "INTERNAL_SERVER_ERROR")
    return SquareApiError(status, code, "An internal error has occurred; try again later.")
