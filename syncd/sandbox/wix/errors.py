"""Wix error answers: one exception carrying the status and the body Wix would send."""

from __future__ import annotations

from typing import Any

from syncd.sandbox.errors import ApiError


class WixApiError(ApiError):
    """A refusal the emulator answers with `status` and a Wix error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        data: dict[str, Any] | None = None,
        violations: list[dict[str, str]] | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.code = code
        self.data = data or {}
        self.violations = violations
        super().__init__(f"{status} {message}")

    def body(self) -> dict[str, Any]:
        """The JSON body: an applicationError, a validationError, or bare details."""
        details: dict[str, Any] = {}
        if self.violations is not None:
            details["validationError"] = {"fieldViolations": self.violations}
        elif self.code is not None:
            details["applicationError"] = {
                "code": self.code,
                "description": self.message,
                "data": self.data,
            }
        return {"message": self.message, "details": details}


def invalid(field: str, description: str, rule: str = "INVALID") -> WixApiError:
    """400 with one field violation, the way Wix reports a malformed request."""
    return WixApiError(
        400,
        f"{field}: {description}",
        violations=[{"field": field, "description": description, "violatedRule": rule}],
    )


def not_found(entity: str, entity_id: str) -> WixApiError:
    """404 for a missing entity."""
    return WixApiError(
        404,
        f"{entity} not found: {entity_id}",
        code=f"{entity.upper().replace(' ', '_')}_NOT_FOUND",
        data={"id": entity_id},
    )
