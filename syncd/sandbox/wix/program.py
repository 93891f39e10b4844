"""The loyalty program's operations: status changes, points expiration, PATCH; each fires
`program_updated`."""

from __future__ import annotations

from typing import Any

from syncd.sandbox.wix.errors import WixApiError, invalid
from syncd.sandbox.wix.state import WixState


def set_status(state: WixState, status: str, *, origin: str = "app") -> dict[str, Any]:
    """Move the program to DRAFT, ACTIVE or PAUSED; fires program_updated on a change."""
    if status not in ("DRAFT", "ACTIVE", "PAUSED"):
        raise invalid("status", "must be DRAFT, ACTIVE or PAUSED")
    with state.lock:
        if state.program.status != status:
            state.program.status = status
            _changed(state, origin)
        return state.program.to_wire()


def pause(state: WixState) -> dict[str, Any]:
    """Pause an ACTIVE program (a DRAFT one cannot be paused)."""
    with state.lock:
        if state.program.status == "DRAFT":
            raise WixApiError(428, "A draft program cannot be paused", code="PROGRAM_NOT_ACTIVE")
        return set_status(state, "PAUSED")


def set_points_expiration(state: WixState, enabled: bool) -> dict[str, Any]:
    """Turn points expiration on (3 months of inactivity, all points) or off."""
    with state.lock:
        if enabled:
            state.program.points_expiration = {
                "status": "ENABLED",
                "monthsOfInactivity": 3,
                "expiringPointsPercentage": 100,
            }
        else:
            state.program.points_expiration = {"status": "DISABLED"}
        _changed(state, "app")
        return state.program.to_wire()


def update(state: WixState, patch: Any) -> dict[str, Any]:
    """PATCH the program's name and point definition (status is read-only)."""
    if not isinstance(patch, dict):
        raise invalid("loyaltyProgram", "is required", "REQUIRED_FIELD")
    name = patch.get("name")
    if name is not None and (not isinstance(name, str) or not 2 <= len(name) <= 50):
        raise invalid("loyaltyProgram.name", "must be 2..50 characters")
    definition = patch.get("pointDefinition")
    if definition is not None and not isinstance(definition, dict):
        raise invalid("loyaltyProgram.pointDefinition", "must be an object")
    custom = (definition or {}).get("customName")
    if custom is not None and (not isinstance(custom, str) or len(custom) > 20):
        raise invalid("loyaltyProgram.pointDefinition.customName", "at most 20 characters")
    with state.lock:
        if name is not None:
            state.program.name = name
        if definition:
            state.program.point_definition.update(
                {k: v for k, v in definition.items() if k in ("customName", "icon")}
            )
        _changed(state, "app")
        return state.program.to_wire()


def _changed(state: WixState, origin: str) -> None:
    state.program.updated = state.clock()
    body = {"currentEntity": state.program.to_wire()}
    state.emit("program_updated", state.program_id, "updatedEvent", body, origin)
