"""A shop with 500 customers spread over Wix and Square, every case a backfill meets, and
what each balance must be after `syncd --reconcile` (initial policy `external`,
`create_missing = "both"`).

Cases: equal on both sides; different; only in Wix (with and without a phone: Square keys
accounts by phone); only in Square (with and without an email); matched only by phone;
matched only by email; ambiguous email (two Wix customers share it); a Square balance below
zero (Wix clamps at zero and the rest becomes an open conflict).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from connectors.square.emulator import SquareEmulator
from syncd.sandbox.wix import WixEmulator

COUNTS = {
    "equal": 150,
    "different": 150,
    "wix_only": 40,
    "wix_only_no_phone": 10,
    "square_only": 40,
    "square_only_no_email": 10,
    "phone_only": 40,
    "email_only": 30,
    "ambiguous": 20,  # 10 emails, each on two Wix customers and one Square customer
    "negative": 10,
}
assert sum(COUNTS.values()) == 500


@dataclass
class Customer:
    kind: str
    email: str | None
    phone: str | None
    wix_balance: int | None  # None: no Wix account before the run
    square_balance: int | None
    square_email: str | None = None
    square_phone: str | None = None
    wix_id: str | None = None
    square_id: str | None = None


@dataclass
class Shop:
    customers: list[Customer] = field(default_factory=list)

    def of(self, kind: str) -> list[Customer]:
        return [c for c in self.customers if c.kind == kind]


def build(seed: int = 0) -> Shop:
    rng = random.Random(seed)
    shop = Shop()
    n = 0

    def person(kind: str, wix: int | None, square: int | None, **extra: Any) -> Customer:
        nonlocal n
        n += 1
        customer = Customer(
            kind=kind,
            email=f"c{n}@example.com",
            phone=f"+1415{2000000 + n:07d}",
            wix_balance=wix,
            square_balance=square,
        )
        customer.square_email, customer.square_phone = customer.email, customer.phone
        for key, value in extra.items():
            setattr(customer, key, value)
        shop.customers.append(customer)
        return customer

    for _ in range(COUNTS["equal"]):
        b = rng.randint(0, 900)
        person("equal", b, b)
    for _ in range(COUNTS["different"]):
        b, e = rng.sample(range(0, 901), 2)
        person("different", b, e)
    for _ in range(COUNTS["wix_only"]):
        person("wix_only", rng.randint(1, 900), None)
    for _ in range(COUNTS["wix_only_no_phone"]):
        person("wix_only_no_phone", rng.randint(1, 900), None, phone=None)
    for _ in range(COUNTS["square_only"]):
        person("square_only", None, rng.randint(1, 900))
    for _ in range(COUNTS["square_only_no_email"]):
        person("square_only_no_email", None, rng.randint(1, 900), square_email=None, email=None)
    for _ in range(COUNTS["phone_only"]):
        c = person("phone_only", rng.randint(0, 900), rng.randint(0, 900))
        c.square_email = f"other-{c.email}"
    for _ in range(COUNTS["email_only"]):
        c = person("email_only", rng.randint(0, 900), rng.randint(0, 900))
        c.square_phone = f"+1628{2000000 + n:07d}"
    for group in range(COUNTS["ambiguous"] // 2):
        shared = f"family{group}@example.com"
        first = person("ambiguous", rng.randint(0, 900), rng.randint(0, 900), email=shared)
        first.square_email, first.square_phone = shared, f"+1707{2000000 + n:07d}"
        person("ambiguous", rng.randint(0, 900), None, email=shared)
    for _ in range(COUNTS["negative"]):
        person("negative", rng.randint(1, 900), -rng.randint(1, 50))
    return shop


def seed(shop: Shop, wix: WixEmulator, square: SquareEmulator) -> None:
    """Create every customer's accounts on the emulators, remembering their ids."""
    for c in shop.customers:
        if c.wix_balance is not None:
            spec: dict[str, Any] = {
                "email": c.email,
                "name": f"Customer {c.kind}",
                "balance": c.wix_balance,
            }
            if c.phone:
                spec["phone"] = c.phone
            c.wix_id = wix.seed_accounts([spec])[0]["id"]
        if c.square_balance is not None:
            made = square.seed_accounts(
                [
                    {
                        "email": c.square_email,
                        "phone": c.square_phone,
                        "balance": c.square_balance,
                        "name": f"Customer {c.kind}",
                    }
                ]
            )
            c.square_id = made[0]["id"]


def expected(c: Customer) -> tuple[int | None, int | None]:
    """(Wix balance, Square balance) after the reconcile; None: no account on that side."""
    match c.kind:
        case "equal" | "different" | "phone_only" | "email_only":
            return c.square_balance, c.square_balance
        case "wix_only":
            return c.wix_balance, c.wix_balance  # a Square account is created and filled
        case "wix_only_no_phone":
            return c.wix_balance, None  # Square cannot create an account without a phone
        case "square_only" | "square_only_no_email":
            return c.square_balance, c.square_balance  # a Wix contact and account are created
        case "ambiguous":
            return c.wix_balance, c.square_balance  # reported, never guessed
        case "negative":
            return 0, c.square_balance  # Wix stops at zero; the rest is an open conflict
    raise AssertionError(c.kind)


def actual(c: Customer, wix: WixEmulator, square: SquareEmulator) -> tuple[int | None, int | None]:
    """The customer's balances on the emulators now, finding created accounts by phone/email."""
    wix_accounts = {a["id"]: a for a in wix.state.all_accounts()}
    wix_id = c.wix_id
    if wix_id is None:
        contacts = wix.state.contacts.all()
        contact = next(
            (
                k
                for k in contacts
                if any(
                    p.get("phone") == c.square_phone or p.get("e164Phone") == c.square_phone
                    for p in (k.get("info", {}).get("phones", {}) or {}).get("items", [])
                )
            ),
            None,
        )
        wix_id = next(
            (a["id"] for a in wix_accounts.values() if contact and a["contactId"] == contact["id"]),
            None,
        )
    square_id = c.square_id
    if square_id is None and c.phone:
        square_id = next(
            (a["id"] for a in square.accounts() if a["mapping"]["phone_number"] == c.phone), None
        )
    wix_balance = int(wix_accounts[wix_id]["points"]["balance"]) if wix_id else None
    square_balance = int(square.account(square_id)["balance"]) if square_id else None
    return wix_balance, square_balance
