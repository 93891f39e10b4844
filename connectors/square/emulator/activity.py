"""What happens at the seller's side: sales at the till, redemptions, dashboard adjustments,
expiring points; and seeding the seller with customers and accounts (admin routes, helpers).

Till and dashboard events carry `source` SQUARE and the seller's location, and fire the same
webhooks as API changes. Seeding fires none and writes a seeded balance as one ADJUST_POINTS
event (source SQUARE, reason "sandbox seed"); seeded customers are searchable at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.square.emulator.customers import Customer
from connectors.square.emulator.errors import bad_request
from connectors.square.emulator.loyalty import SQUARE, LoyaltyState
from connectors.square.emulator.wire import Json, e164, refuse

KINDS = ("sale", "redeem", "adjust", "expire")


@dataclass(frozen=True)
class Activity:
    """The account after a till or dashboard action, and the events it wrote."""

    account: Json
    event_ids: list[str]

    def to_wire(self) -> Json:
        return {"loyalty_account": self.account, "event_ids": list(self.event_ids)}


def till_activity(
    state: LoyaltyState, account_id: str, kind: str, points: int, reason: str | None = None
) -> Activity:
    """A change made at the seller's side.

    sale:   ACCUMULATE_POINTS +points (an order at the till)
    redeem: CREATE_REWARD -points then REDEEM_REWARD (refused below zero, like the till)
    adjust: ADJUST_POINTS by the signed `points` from the dashboard (may go below zero)
    expire: EXPIRE_POINTS -min(points, balance)
    """
    if kind not in KINDS:
        raise bad_request(f"`kind` must be one of {', '.join(KINDS)}.", field="kind")
    if kind == "adjust" and points == 0:
        raise bad_request("`points` must not be 0.", field="points")
    if kind != "adjust" and points <= 0:
        raise bad_request("`points` must be positive.", code="VALUE_TOO_LOW", field="points")
    with state.lock:
        account = state.account(account_id)
        program = {"loyalty_program_id": state.program_id}
        location = state.location_id
        match kind:
            case "sale":
                detail = program | {"points": points, "order_id": state.ids.square_id()}
                events = [
                    state.record(account, "ACCUMULATE_POINTS", points, detail, SQUARE, location)
                ]
            case "redeem":
                if account.balance < points:
                    raise refuse(
                        state.knobs.negative_status,
                        state.knobs.negative_code,
                        f"The account has {account.balance} points; {points} needed.",
                    )
                reward = state.ids.uuid()
                created = program | {"reward_id": reward, "points": -points}
                redeemed = program | {"reward_id": reward, "order_id": state.ids.square_id()}
                events = [
                    state.record(account, "CREATE_REWARD", -points, created, SQUARE, location),
                    state.record(account, "REDEEM_REWARD", 0, redeemed, SQUARE, location),
                ]
            case "adjust":
                events = [
                    state.adjust(
                        account_id,
                        points,
                        reason or "Adjusted from the Square Dashboard",
                        allow_negative=True,
                        source=SQUARE,
                    )
                ]
            case _:
                expired = min(points, account.balance)
                if expired <= 0:
                    raise bad_request("The account has no points to expire.", field="points")
                detail = program | {"points": -expired}
                events = [
                    state.record(account, "EXPIRE_POINTS", -expired, detail, SQUARE, location)
                ]
        return Activity(state.account_wire(account), [e.id for e in events])


def seed_customer(
    state: LoyaltyState,
    *,
    email: str | None = None,
    phone: str | None = None,
    name: str | None = None,
) -> Customer:
    """A customer profile made in the dashboard, searchable at once."""
    given, _, family = (name or "").strip().partition(" ")
    fields = {
        "email_address": email,
        "phone_number": phone,
        "given_name": given or None,
        "family_name": family.strip() or None,
    }
    with state.lock:
        customer = state.customers.create(
            {k: v for k, v in fields.items() if v}, source="DIRECTORY"
        )
        customer.visible_from = customer.created
        return customer


def seed_account(
    state: LoyaltyState,
    *,
    phone: str,
    email: str | None = None,
    name: str | None = None,
    balance: int = 0,
) -> Json:
    """A customer (email, phone, name) with a loyalty account and `balance` (may be negative)."""
    e164(phone, "phone")
    with state.lock:
        customer = seed_customer(state, email=email, phone=phone, name=name)
        account = state.create_account(state.program_id, phone, seeding=True, customer=customer)
        if balance:
            detail = {
                "loyalty_program_id": state.program_id,
                "points": balance,
                "reason": "sandbox seed",
            }
            state.record(
                account, "ADJUST_POINTS", balance, detail, SQUARE, state.location_id, emit=False
            )
        return state.account_wire(account)
