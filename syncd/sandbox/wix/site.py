"""What happens on the site itself: customers redeem and earn, points expire, the owner
adjusts in the dashboard; and seeding a site with customers. Used by the admin routes."""

from __future__ import annotations

from typing import Any

from syncd.sandbox.wix.errors import WixApiError, invalid
from syncd.sandbox.wix.model import LOYALTY_APP_ID
from syncd.sandbox.wix.state import WixState

SITE_KINDS = ("redeem", "earn", "expire", "adjust")


def site_activity(
    state: WixState, account_id: str, kind: str, amount: int, description: str | None = None
) -> tuple[dict[str, Any], str]:
    """A change made on the site: a customer redeems (-amount) or earns (+amount), points
    expire (-amount, at most the balance), or the owner adjusts (signed amount)."""
    if kind not in SITE_KINDS:
        raise invalid("kind", "must be redeem, earn, expire or adjust")
    if kind == "adjust" and amount == 0:
        raise invalid("amount", "must not be 0")
    if kind != "adjust" and amount <= 0:
        raise invalid("amount", "must be positive", "MIN")
    with state.lock:
        account = state.account(account_id)
        before = account.points["balance"]
        if kind in ("redeem", "earn"):
            state.require_active(f"{kind}ing points")
        delta = {"redeem": -amount, "earn": amount, "expire": -min(amount, before)}.get(
            kind, amount
        )
        if delta == 0:
            raise invalid("amount", "the account has no points to expire")
        if before + delta < 0:
            raise WixApiError(
                state.knobs.negative_status, "Not enough points", code=state.knobs.negative_code
            )
        after = before + delta
        extra: dict[str, Any]
        match kind:
            case "redeem":
                reward = {"rewardId": state.new_id(), "rewardType": "DISCOUNT_AMOUNT",
                          "referenceEntityId": state.new_id()}  # fmt: skip
                extra = {"redeemInfo": reward}
            case "earn":
                extra = {"earnInfo": {"appId": LOYALTY_APP_ID, "activityType": "wix_stores_order"}}
            case "expire":
                extra = {"expireInfo": {"amountBefore": before, "amountAfter": after}}
            case _:
                adjust = {"appId": LOYALTY_APP_ID, "amountBefore": before, "amountAfter": after}
                extra = {"adjustInfo": adjust}
        tx_id = state.change_points(account, kind.upper(), delta, description, extra, origin="site")
        return state.account_wire(account), tx_id


def seed_account(
    state: WixState,
    *,
    email: str | None = None,
    name: str | None = None,
    phone: str | None = None,
    country_code: str | None = None,
    balance: int = 0,
) -> dict[str, Any]:
    """Create a contact and its account directly (no program check, no webhooks)."""
    first, _, last = (name or "").partition(" ")
    info: dict[str, Any] = {"name": {"first": first, "last": last}}
    if email:
        info["emails"] = {"items": [{"email": email, "tag": "MAIN"}]}
    if phone:
        item = {"phone": phone, "tag": "MOBILE"} | (
            {"countryCode": country_code} if country_code else {}
        )
        info["phones"] = {"items": [item]}
    with state.lock:
        contact = state.contacts.add(info, allow_duplicates=True)
        account = state.open_account(contact["id"], check_program=False)
        if balance:
            extra = {"earnInfo": {"appId": LOYALTY_APP_ID, "activityType": "sandbox_seed"}}
            state.change_points(
                account, "EARN", balance, "sandbox seed", extra, origin="site", emit=False
            )
        return state.account_wire(account)


def recalculate(state: WixState) -> int:
    """Wix's periodic recalculation: `account_updated` for every account, nothing changed.

    Real sites send these about every 15 minutes; they are noise a client must ignore.
    """
    with state.lock:
        for account in state.accounts.values():
            body = {"currentEntity": state.account_wire(account)}
            state.emit("account_updated", account.id, "updatedEvent", body, "site")
        return len(state.accounts)
