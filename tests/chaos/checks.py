"""What must hold once the chaos is over, read from the emulators' ledgers and syncd's store.

Each check returns violations, one line each, saying what is wrong and the evidence:

- `balances`: every customer has one account on each side, linked to each other; both
  balances equal the start plus every change made on either side, except for points syncd
  parked in open conflicts (held or clamped): W + held(external) == E + held(wix) == expected;
- `writes`: each `syncd:<op>` tag is in its side's ledger once if the operation is APPLIED,
  never if it is VOID or FAILED, and never without an operation; none left PENDING/SENT;
- `webhooks`: every webhook an emulator saw answered 2xx is in the inbox, by event id;
- `leases`: no two writes of one link in flight at once (with replicas: one owner at a time);
- `turns`: a scheduled job's turns never overlap (one run per turn across replicas).
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from syncd.engine.outbox import TAG_PREFIX
from syncd.store.db import make_engine
from syncd.store.models import (
    Conflict,
    ConflictStatus,
    InboxEvent,
    JobTurn,
    Link,
    Operation,
    OperationStatus,
)
from tests.chaos.daemons import CONNECTOR
from tests.chaos.world import Customer, Shop

UNRESOLVED = (OperationStatus.PENDING, OperationStatus.SENT)


def reader(url: str) -> Engine:
    """An engine that only reads: plain deferred transactions on SQLite, so the harness
    never holds the write lock the daemons need."""
    if url.startswith("sqlite"):
        return create_engine(url, connect_args={"timeout": 10})
    return make_engine(url)


@dataclass(frozen=True)
class Busy:
    """Work syncd still has: dirty links, unresolved writes, unlinked accounts to match."""

    dirty: int
    unresolved: int
    unmatched: int

    @property
    def idle(self) -> bool:
        return not (self.dirty or self.unresolved or self.unmatched)


def busy(engine: Engine) -> Busy:
    with engine.connect() as db:
        dirty = db.execute(select(func.count()).where(col(Link.dirty).is_(True))).scalar_one()
        unresolved = db.execute(
            select(func.count()).where(col(Operation.status).in_(UNRESOLVED))
        ).scalar_one()
        unmatched = db.execute(
            select(func.count())
            .where(col(InboxEvent.processed_at).is_(None))
            .where(col(InboxEvent.entity_id).is_not(None))
        ).scalar_one()
    return Busy(int(dirty), int(unresolved), int(unmatched))


@dataclass
class Store:
    """The rows the checks read, all at once after the settle."""

    links: list[Link]
    operations: list[Operation]
    conflicts: list[Conflict]
    inbox: set[tuple[str, str]]

    @classmethod
    def read(cls, engine: Engine) -> Store:
        with Session(engine) as session:
            links = list(session.exec(select(Link)).all())
            operations = list(session.exec(select(Operation)).all())
            conflicts = list(session.exec(select(Conflict)).all())
            inbox = {
                (str(s), str(e))
                for s, e in session.exec(select(InboxEvent.source, InboxEvent.event_id))
            }
            session.expunge_all()
        return cls(links, operations, conflicts, inbox)

    def held(self, link_id: int | None) -> dict[str, int]:
        """Points parked in open conflicts of a link, by the side whose change was held."""
        found = {"wix": 0, "external": 0}
        for conflict in self.conflicts:
            open_here = conflict.link_id == link_id and conflict.status is ConflictStatus.OPEN
            if open_here and conflict.side in found and conflict.amount:
                found[conflict.side] += conflict.amount
        return found

    @property
    def open_conflicts(self) -> list[Conflict]:
        return [c for c in self.conflicts if c.status is ConflictStatus.OPEN]


def balances(shop: Shop, store: Store) -> list[str]:
    """One account per customer and side, linked together, and every point accounted for."""
    wix_by_email: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for account in shop.wix.state.all_accounts():
        wix_by_email[str(account.get("contact", {}).get("email"))].append(account)
    emails = {c["id"]: str(c.get("email_address")) for c in shop.square.customers()}
    square_by_email: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for account in shop.square.accounts():
        square_by_email[emails.get(str(account["customer_id"]), "?")].append(account)
    links = {link.wix_account_id: link for link in store.links}
    found: list[str] = []
    known = {c.email for c in shop.customers}
    for email in sorted((set(wix_by_email) | set(square_by_email)) - known):
        counts = f"wix {len(wix_by_email[email])}, square {len(square_by_email[email])}"
        found.append(f"accounts nobody made: {email} ({counts})")
    if len(store.links) != len(shop.customers):
        found.append(f"{len(store.links)} links for {len(shop.customers)} customers")
    for customer in shop.customers:
        wix, square = wix_by_email[customer.email], square_by_email[customer.email]
        if len(wix) != 1 or len(square) != 1:
            found.append(
                f"{_who(customer)}: {len(wix)} Wix and {len(square)} Square accounts (want 1+1)"
            )
            continue
        w_id, s_id = str(wix[0]["id"]), str(square[0]["id"])
        link = links.get(w_id)
        if link is None or link.external_id != s_id:
            found.append(
                f"{_who(customer)}: Wix {w_id} and Square {s_id} are not linked together "
                f"(link: {link.external_id if link else None})"
            )
            continue
        w, e = int(wix[0]["points"]["balance"]), int(square[0]["balance"])
        held = store.held(link.id)
        if w + held["external"] != customer.expected or e + held["wix"] != customer.expected:
            found.append(
                f"{_who(customer)} link {link.id}: Wix {w}, Square {e}; "
                f"expected {customer.expected} (start {customer.start}, "
                f"{customer.wix_changes:+d} on Wix, {customer.square_changes:+d} at Square); "
                f"held wix {held['wix']:+d}, external {held['external']:+d}; "
                f"bases {link.wix_base}/{link.ext_base}"
            )
    return found


def _who(customer: Customer) -> str:
    return f"customer {customer.number} ({customer.kind})"


def tags(shop: Shop) -> dict[str, Counter[str]]:
    """How often each syncd operation id appears in each side's ledger."""
    found: dict[str, Counter[str]] = {"to_wix": Counter(), "to_external": Counter()}
    for entry in shop.wix.state.all_transactions():
        word = str(entry.get("description") or "").split(" ")[0]
        if word.startswith(TAG_PREFIX):
            found["to_wix"][word.removeprefix(TAG_PREFIX)] += 1
    for entry in shop.square.events():
        reason = str((entry.get("adjust_points") or {}).get("reason") or "").split(" ")[0]
        if reason.startswith(TAG_PREFIX):
            found["to_external"][reason.removeprefix(TAG_PREFIX)] += 1
    return found


def writes(shop: Shop, store: Store) -> list[str]:
    """Every APPLIED write in its ledger exactly once; VOID and FAILED ones never; no write
    without its operation; nothing left PENDING or SENT."""
    ledger = tags(shop)
    found: list[str] = []
    known: set[str] = set()
    for op in store.operations:
        known.add(op.id)
        count = ledger[op.direction.value][op.id]
        where = f"operation {op.id} (link {op.link_id}, {op.direction.value} {op.delta:+d})"
        if op.status in UNRESOLVED:
            found.append(f"{where} left {op.status.value} after the settle")
        elif op.status is OperationStatus.APPLIED and count != 1:
            found.append(f"{where} is APPLIED and in the ledger {count} times")
        elif op.status in (OperationStatus.VOID, OperationStatus.FAILED) and count:
            found.append(
                f"{where} is {op.status.value} ({op.error}) but in the ledger {count} times"
            )
    for direction, counts in ledger.items():
        for op_id, count in counts.items():
            if op_id not in known:
                found.append(f"write {op_id} ({direction}) in the ledger {count}x, no operation")
    return found


def webhooks(shop: Shop, store: Store) -> list[str]:
    """Every webhook answered 2xx was stored (by source and event id)."""
    found: list[str] = []
    for source, emulator in (("wix", shop.wix), (CONNECTOR, shop.square)):
        acknowledged = {a.event_id for a in emulator.webhooks.attempts if a.ok}
        lost = sorted(e for e in acknowledged if (source, e) not in store.inbox)
        if lost:
            found.append(
                f"{len(lost)} {source} webhooks answered 2xx but not in the inbox: {lost[:5]}"
            )
    return found


def leases(store: Store) -> list[str]:
    """No two writes of one link in flight at once: each APPLIED write's [sent, applied]
    interval ends before the link's next one is sent (what a lease guarantees)."""
    by_link: dict[int, list[Operation]] = defaultdict(list)
    for op in store.operations:
        if op.status is OperationStatus.APPLIED and op.applied_at is not None:
            by_link[op.link_id].append(op)
    found: list[str] = []
    for link_id, ops in by_link.items():
        ops.sort(key=lambda o: o.sent_at or o.created_at)
        for first, second in itertools.pairwise(ops):
            assert first.applied_at is not None
            if (second.sent_at or second.created_at) < first.applied_at:
                found.append(
                    f"link {link_id}: write {second.id} sent at {second.sent_at} while "
                    f"{first.id} was in flight ({first.sent_at} .. {first.applied_at})"
                )
    return found


def lease_holders(engine: Engine) -> Counter[str]:
    """Links leased right now, by owner."""
    with engine.connect() as db:
        owners = db.execute(select(Link.lease_owner).where(col(Link.lease_owner).is_not(None)))
        return Counter(str(owner) for (owner,) in owners)


@dataclass
class Sampler:
    """Watches the store while the chaos runs: whose turn each scheduled job was, and which
    processes held leases (evidence that replicas share the work)."""

    engine: Engine
    turns: dict[str, list[tuple[str | None, datetime]]] = field(default_factory=dict)
    lease_owners: Counter[str] = field(default_factory=Counter)

    def sample(self) -> None:
        with self.engine.connect() as db:
            for name, owner, until in db.execute(
                select(JobTurn.name, JobTurn.owner, JobTurn.until)
            ):
                seen = self.turns.setdefault(str(name), [])
                if not seen or seen[-1][1] != until:
                    seen.append((owner, until))
            for (owner,) in db.execute(
                select(Link.lease_owner).where(col(Link.lease_owner).is_not(None))
            ):
                self.lease_owners[str(owner)] += 1

    def turn_owners(self) -> Counter[str]:
        """Turns observed per owner, over every job."""
        return Counter(owner or "?" for seen in self.turns.values() for owner, _ in seen)


def turns(sampler: Sampler, hold: timedelta) -> list[str]:
    """A turn is taken only once the previous one has expired: `until` moves by at least
    the hold each time (observed turns; the sampler may miss some, never invent one)."""
    found: list[str] = []
    for name, seen in sampler.turns.items():
        for (owner_a, until_a), (owner_b, until_b) in itertools.pairwise(seen):
            if until_b - hold < until_a - timedelta(milliseconds=1):
                found.append(
                    f"job {name}: {owner_b} took a turn from {until_b - hold} while {owner_a} "
                    f"held it until {until_a}"
                )
    return found


def listing(lines: Iterable[str], limit: int = 8) -> list[str]:
    """At most `limit` lines, and how many more there were."""
    lines = list(lines)
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])
