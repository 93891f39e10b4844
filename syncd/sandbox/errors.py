"""The refusal every emulator raises: an HTTP status and the vendor's error body.

Each vendor subclasses `ApiError` with its own body (`WixApiError`: message + details;
`SquareApiError`: `{"errors": [...]}`). The shared gate and admin routes catch `ApiError` and
answer `error.response()`, so they never need to know a vendor's error shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse


class ApiError(Exception):
    """A refusal answered with `status` and the body `body()` gives."""

    status: int

    def body(self) -> dict[str, Any]:
        """The JSON body the vendor sends with this refusal."""
        raise NotImplementedError

    def response(self, headers: Mapping[str, str] | None = None) -> JSONResponse:
        """The answer: the body, the status, and any extra headers (e.g. Retry-After)."""
        return JSONResponse(self.body(), status_code=self.status, headers=headers)
