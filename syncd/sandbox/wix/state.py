"""The Wix Loyalty model and its rules, without HTTP: program, accounts, ledger, contacts.

Every points change goes through `change_points`, which updates the counters, bumps the
revision, writes the transaction and tells the listeners (the webhook dispatcher) what
happened. Refusals raise `WixApiError` with the status and body Wix would answer. A lock
makes each call atomic, so Python helpers in a test thread and the server thread can share
one model.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

from syncd.sandbox.indexes import Grouped
from syncd.sandbox.wix.contacts import ContactBook
from syncd.sandbox.wix.errors import WixApiError, invalid, not_found
from syncd.sandbox.wix.knobs import WixKnobs
from syncd.sandbox.wix.model import (
    STALE_REVISION,
    Account,
    Change,
    Program,
    contact_summary,
)
from syncd.sandbox.wix.ordered import (
    CreationOrder,
    Key,
    Records,
    created_since,
    equal_to,
)
from syncd.sandbox.wix.wire import Clock, IdFactory, iso, json_copy


class WixState:
    """The whole in-memory site: program, contacts, accounts, transactions, earn keys."""

    def __init__(
        self, knobs: WixKnobs, clock: Clock, new_id: IdFactory, *, app_id: str, program_id: str
    ) -> None:
        self.knobs = knobs
        self.clock = clock
        self.new_id = new_id
        self.app_id = app_id
        self.program_id = program_id  # the program has no id of its own: webhooks use this
        self.lock = threading.RLock()
        self.listeners: list[Callable[[Change], None]] = []
        now = clock()
        self.program = Program(created=now, updated=now)
        self.contacts = ContactBook(clock, new_id)
        self.accounts: dict[str, Account] = {}
        self.transactions: dict[str, dict[str, Any]] = {}
        self.earn_keys: dict[str, dict[str, Any]] = {}
        # Indexes, so that no API call reads every account or transaction.
        self.by_contact: dict[str, Account] = {}
        self.account_order: CreationOrder[Account] = CreationOrder(_account_key)
        self.ledger_order: CreationOrder[dict[str, Any]] = CreationOrder(_transaction_key)
        self.ledgers: Grouped[str, dict[str, Any]] = Grouped()  # by account id

    def reset(self) -> None:
        """Back to a fresh install: program DRAFT, no contacts, accounts or ledger."""
        with self.lock:
            now = self.clock()
            self.program = Program(created=now, updated=now)
            self.contacts = ContactBook(self.clock, self.new_id)
            for kept in (self.accounts, self.transactions, self.earn_keys, self.by_contact):
                kept.clear()
            self.account_order.clear()
            self.ledger_order.clear()
            self.ledgers.clear()

    # ---- reading -------------------------------------------------------------------------

    def account_wire(self, account: Account) -> dict[str, Any]:
        """The account as the API returns it, with its `contact` summary."""
        wire: dict[str, Any] = {
            "id": account.id,
            "contactId": account.contact_id,
            "points": dict(account.points),
            "rewardAvailable": False,
            "createdDate": iso(account.created),
            "updatedDate": iso(account.updated),
            "lastActivityDate": iso(account.last_activity),
            "revision": str(account.revision),
            "tier": {"points": 0},
        }
        if account.member_id:
            wire["memberId"] = account.member_id
        contact = self.contacts.contacts.get(account.contact_id)
        if contact is not None:
            wire["contact"] = contact_summary(contact)
        return wire

    def account(self, account_id: str) -> Account:
        """The account; 404 when unknown."""
        found = self.accounts.get(account_id)
        if found is None:
            raise not_found("account", account_id)
        return found

    def account_by(self, *, contact_id: str | None = None, member_id: str | None = None) -> Account:
        """The account of a contact or member; 404 when there is none."""
        if not contact_id and not member_id:
            raise invalid("contactId", "contactId or memberId is required", "REQUIRED_FIELD")
        if contact_id and not member_id:
            found = self.by_contact.get(contact_id)
            if found is None:
                raise not_found("account", contact_id)
            return found
        for account in self.accounts.values():  # members are rare: no index
            if (contact_id and account.contact_id == contact_id) or (
                member_id and account.member_id == member_id
            ):
                return account
        raise not_found("account", contact_id or member_id or "")

    def all_accounts(self) -> list[dict[str, Any]]:
        """Every account, wire-shaped."""
        with self.lock:
            return [self.account_wire(a) for a in self.accounts.values()]

    def account_records(self) -> Records:
        """The accounts as the query routes page them (read under the lock): a filter on one
        `contact.email` reads only the accounts of contacts with that email."""
        return Records(self.account_order, self.account_wire, self._accounts_for)

    def _accounts_for(self, filter_: Any) -> list[Account] | None:
        email = equal_to(filter_, "contact.email")
        if email is None:
            return None
        owners = (self.by_contact.get(c["id"]) for c in self.contacts.with_email(email))
        return [account for account in owners if account is not None]

    def transaction_records(self) -> Records:
        """The ledger as the query routes page it (read under the lock): a filter on one
        `accountId`, or on `createdDate` from some time, reads only those transactions."""
        return Records(self.ledger_order, json_copy, self._transactions_for)

    def _transactions_for(self, filter_: Any) -> list[dict[str, Any]] | None:
        account_id = equal_to(filter_, "accountId")
        if account_id is not None:
            return self.ledgers.get(account_id)
        since = created_since(filter_)
        if since is None:
            return None
        moment, inclusive = since
        return self.ledger_order.items(self.ledger_order.created_from(moment, inclusive=inclusive))

    def all_transactions(self) -> list[dict[str, Any]]:
        """Every transaction, wire-shaped, oldest first."""
        with self.lock:
            return [copy.deepcopy(t) for t in self.transactions.values()]

    def transaction(self, transaction_id: str) -> dict[str, Any]:
        """One transaction; 404 when unknown."""
        found = self.transactions.get(transaction_id)
        if found is None:
            raise not_found("loyalty transaction", transaction_id)
        return copy.deepcopy(found)

    def program_totals(self) -> dict[str, Any]:
        """Sum of every account's points, and the number of accounts (no tiers)."""
        with self.lock:
            totals = dict.fromkeys(("balance", "earned", "adjusted", "redeemed", "expired"), 0)
            for account in self.accounts.values():
                for key, value in account.points.items():
                    totals[key] += value
            return {"points": totals, "tierTotals": [{"numberOfAccounts": len(self.accounts)}]}

    def require_active(self, what: str) -> None:
        """Refuse `what` unless the program is ACTIVE (status and code from the knobs)."""
        if self.program.status != "ACTIVE":
            raise WixApiError(
                self.knobs.not_active_status,
                f"Loyalty program is {self.program.status}: {what} needs an ACTIVE program",
                code=self.knobs.not_active_code,
                data={"status": self.program.status},
            )

    # ---- accounts ------------------------------------------------------------------------

    def create_account(self, contact_id: Any, *, seeding: bool = False) -> dict[str, Any]:
        """Create the contact's account (one per contact: 409); the program must be ACTIVE.

        `seeding` skips the program check and the webhook (sandbox set-up, not an API call).
        """
        with self.lock:
            account = self.open_account(contact_id, check_program=not seeding)
            wire = self.account_wire(account)
            if not seeding:
                self.emit("account_created", account.id, "createdEvent", {"entity": wire}, "app")
            return wire

    def open_account(self, contact_id: Any, *, check_program: bool = True) -> Account:
        """`create_account` without the webhook, returning the model's account itself."""
        if not isinstance(contact_id, str) or not contact_id:
            raise invalid("contactId", "is required", "REQUIRED_FIELD")
        with self.lock:
            if check_program:
                self.require_active("creating an account")
            if contact_id not in self.contacts.contacts:
                raise not_found("contact", contact_id)
            if contact_id in self.by_contact:
                raise WixApiError(
                    409,
                    "Loyalty account already exists for this contact",
                    code="ACCOUNT_ALREADY_EXISTS",
                    data={"contactId": contact_id},
                )
            now = self.clock()
            account = Account(
                id=self.new_id(), contact_id=contact_id, created=now, updated=now, last_activity=now
            )
            self.accounts[account.id] = account
            self.by_contact[contact_id] = account
            self.account_order.add(account)
            return account

    def adjust(
        self,
        account_id: str,
        *,
        amount: int | None,
        balance: int | None,
        description: str | None,
        revision: int | None,
    ) -> tuple[dict[str, Any], str]:
        """Adjust Points by `amount` or to `balance` (balance wins); returns (account, txId)."""
        if balance is not None:
            if not 0 <= balance <= 999_999_999:
                raise invalid("balance", "must be 0..999999999", "RANGE")
        elif amount is not None:
            if amount == 0 or not -9_999_999 <= amount <= 9_999_999:
                raise invalid("amount", "must be -9999999..9999999 and not 0", "RANGE")
        else:
            raise invalid("amount", "amount or balance is required", "REQUIRED_FIELD")
        _check_description(description)
        if revision is not None and revision < 1:
            raise invalid("revision", "must be at least 1", "MIN")
        with self.lock:
            account = self.account(account_id)
            if self.knobs.adjust_requires_active:
                self.require_active("adjusting points")
            if revision is None and self.knobs.adjust_without_revision == "reject":
                raise invalid("revision", "is required", "REQUIRED_FIELD")
            if revision is not None and revision != account.revision:
                raise WixApiError(
                    409,
                    STALE_REVISION,
                    code=self.knobs.stale_revision_code,
                    data={"currentRevision": str(account.revision)},
                )
            before = account.points["balance"]
            delta = balance - before if balance is not None else amount or 0
            if before + delta < 0:
                raise WixApiError(
                    self.knobs.negative_status,
                    "Points balance cannot become negative",
                    code=self.knobs.negative_code,
                    data={"balance": before, "amount": delta},
                )
            info = {"appId": self.app_id, "amountBefore": before, "amountAfter": before + delta}
            tx_type = "ADJUST" if balance is not None else self.knobs.amount_adjust_type
            tx_id = self.change_points(
                account, tx_type, delta, description, {"adjustInfo": info}, origin="app"
            )
            return self.account_wire(account), tx_id

    def earn(
        self,
        account_id: str,
        *,
        amount: int,
        app_id: str,
        idempotency_key: str,
        description: str | None = None,
        activity_type: str | None = None,
        order_id: str | None = None,
    ) -> tuple[dict[str, Any], str]:
        """Earn Points; the same idempotency key returns the first answer and changes nothing."""
        if not 1 <= amount <= 9_999_999:
            raise invalid("amount", "must be 1..9999999", "RANGE")
        if not app_id or len(app_id) > 100:
            raise invalid("appId", "is required (1..100 characters)", "REQUIRED_FIELD")
        if not idempotency_key or len(idempotency_key) > self.knobs.earn_key_max_length:
            limit = self.knobs.earn_key_max_length
            raise invalid(
                "idempotencyKey", f"is required (1..{limit} characters)", "REQUIRED_FIELD"
            )
        _check_description(description)
        with self.lock:
            account = self.account(account_id)
            replay = self.earn_keys.get(idempotency_key)
            if replay is not None:
                return copy.deepcopy(replay["account"]), replay["transactionId"]
            self.require_active("earning points")
            info: dict[str, Any] = {"appId": app_id, "activityType": activity_type or ""}
            if order_id:
                info["orderId"] = order_id
            extra = {"earnInfo": info, "idempotencyKey": idempotency_key}
            tx_id = self.change_points(account, "EARN", amount, description, extra, origin="app")
            wire = self.account_wire(account)
            self.earn_keys[idempotency_key] = {"account": wire, "transactionId": tx_id}
            return copy.deepcopy(wire), tx_id

    def change_points(
        self,
        account: Account,
        tx_type: str,
        delta: int,
        description: str | None,
        extra: dict[str, Any],
        *,
        origin: str,
        emit: bool = True,
    ) -> str:
        """Apply a points change: counters, revision, dates, ledger row, webhooks."""
        counter = {
            "EARN": "earned",
            "ADJUST": "adjusted",
            "GIVE": "adjusted",
            "REDEEM": "redeemed",
            "EXPIRE": "expired",
        }
        sign = -1 if tx_type in ("REDEEM", "EXPIRE") else 1
        account.points[counter[tx_type]] += sign * delta
        account.points["balance"] += delta
        now = self.clock()
        account.revision += 1
        account.updated = now
        account.last_activity = now
        tx: dict[str, Any] = {
            "id": self.new_id(),
            "accountId": account.id,
            "createdDate": iso(now),
            "amount": delta,
            "transactionType": tx_type,
            "description": description or "",
            **extra,
        }
        self.transactions[tx["id"]] = tx
        self.ledger_order.add(tx)
        self.ledgers.add(account.id, tx)
        if emit:
            wire = self.account_wire(account)
            body = {"body": {"account": wire}}
            self.emit("account_points_updated", account.id, "actionEvent", body, origin)
            self.emit(
                "account_updated", account.id, "updatedEvent", {"currentEntity": wire}, origin
            )
        return str(tx["id"])

    # ---- events --------------------------------------------------------------------------

    def emit(
        self, event: str, entity_id: str, body_kind: str, body: dict[str, Any], origin: str
    ) -> None:
        """Tell the listeners about a change; `event` is e.g. "account_updated".

        The entity FQDN and slug follow from the event name: `account_points_updated` is
        entity `wix.loyalty.v1.account`, slug `points_updated`. The change is dated now.
        """
        entity, _, slug = event.partition("_")
        change = Change(
            event_type=f"wix.loyalty.v1.{event}",
            entity_fqdn=f"wix.loyalty.v1.{entity}",
            slug=slug,
            entity_id=entity_id,
            body_kind=body_kind,
            body=copy.deepcopy(body),
            origin=origin,
            at=self.clock(),
        )
        for listener in list(self.listeners):
            listener(change)


def _check_description(description: str | None) -> None:
    if description is not None and not 1 <= len(description) <= 100:
        raise invalid("description", "must be 1..100 characters", "LENGTH")


def _account_key(account: Account) -> Key:
    return iso(account.created), account.id


def _transaction_key(transaction: dict[str, Any]) -> Key:
    return transaction["createdDate"], transaction["id"]
