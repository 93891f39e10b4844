"""The Wix Loyalty entities and the change record the model emits."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from syncd.sandbox.wix.wire import iso

LOYALTY_APP_ID = "553c79f3-5625-4f38-b14b-ef7c0d1e87df"  # Wix Loyalty's own app id
STALE_REVISION = "entity has already changed since the requested revision"


@dataclass(frozen=True)
class Change:
    """One domain event the model emits: what changed, and the entity as it now is."""

    event_type: str  # e.g. "wix.loyalty.v1.account_points_updated"
    entity_fqdn: str
    slug: str  # created / updated / points_updated
    entity_id: str
    body_kind: str  # createdEvent / updatedEvent / actionEvent
    body: dict[str, Any]
    origin: str  # "app" (through the API) or "site" (the shop, its customers, the owner)
    at: datetime


@dataclass(slots=True)  # hundreds of thousands of them: no __dict__ each
class Account:
    """A loyalty account (`WixState.account_wire` gives the API shape)."""

    id: str
    contact_id: str
    created: datetime
    updated: datetime
    last_activity: datetime
    member_id: str | None = None
    revision: int = 1
    points: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("balance", "earned", "adjusted", "redeemed", "expired"), 0
        )
    )


@dataclass
class Program:
    """The site's single loyalty program."""

    created: datetime
    updated: datetime
    name: str = "Sandbox Rewards"
    point_definition: dict[str, Any] = field(default_factory=lambda: {"customName": "Points"})
    status: str = "DRAFT"
    points_expiration: dict[str, Any] = field(default_factory=lambda: {"status": "DISABLED"})

    def to_wire(self) -> dict[str, Any]:
        """The `loyaltyProgram` object."""
        return {
            "name": self.name,
            "pointDefinition": copy.deepcopy(self.point_definition),
            "status": self.status,
            "createdDate": iso(self.created),
            "updatedDate": iso(self.updated),
            "pointsExpiration": copy.deepcopy(self.points_expiration),
            "premiumFeatures": {"loyaltyProgram": False, "tiers": False, "pointsExpiration": False},
        }


def contact_summary(contact: dict[str, Any]) -> dict[str, Any]:
    """The `contact` block of an account: id, name, email, displayName (no phone)."""
    name = contact["info"].get("name") or {}
    full = " ".join(p for p in (name.get("first"), name.get("last")) if p)
    email = contact.get("primaryInfo", {}).get("email")
    summary: dict[str, Any] = {"id": contact["id"]}
    if full:
        summary["name"] = full
    if email:
        summary["email"] = email
    summary["displayName"] = full or email or ""
    return summary
