"""Accounts that changed but have no link yet: a new customer online or at the till.

Intake and polling leave such events unprocessed in the inbox; this job takes them, looks the
customer up on the other side by the connector's match keys (email, then phone), and links the
account when exactly one unlinked candidate answers — or creates the missing account when
`create_missing` allows, starting that link at bases (0, 0) so its balance is carried over. A key
with several candidates is never guessed at: it opens an `ambiguous_match` conflict.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy import and_, delete, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from connectors.base import Connector, ExternalAccount
from syncd.clock import utcnow
from syncd.errors import NotFoundError, SkipError
from syncd.logs import event, get_logger
from syncd.names import split_name
from syncd.reconcile.keys import email_key, phone_key
from syncd.runtime.dirty import mark_dirty
from syncd.store.db import session_scope
from syncd.store.models import Conflict, ConflictStatus, InboxEvent, Link
from syncd.wix.client import WixClient
from syncd.wix.models import Account

log = get_logger(__name__)
BATCH = 50
PENDING = "pending:"  # the external id of a link whose account is being created


class Matcher:
    def __init__(self, engine: Engine, wix: WixClient, links: Mapping[str, Connector]) -> None:
        self.engine = engine
        self.wix = wix
        self.connectors = links

    async def run(self) -> int:
        """Handle a batch of unlinked-account events; how many links it made."""
        made = await self._finish_creations()
        for row in self._pending():
            source = row.source.removesuffix(".poll")
            assert row.entity_id is not None
            if source == "wix":
                made += await self._from_wix(row.entity_id)
            elif source in self.connectors:
                made += await self._from_external(self.connectors[source], row.entity_id)
            self._processed(row)
        return made

    def _pending(self) -> list[InboxEvent]:
        with session_scope(self.engine) as session:
            return list(
                session.exec(
                    select(InboxEvent)
                    .where(col(InboxEvent.processed_at).is_(None))
                    .where(col(InboxEvent.entity_id).is_not(None))
                    .order_by(col(InboxEvent.id))
                    .limit(BATCH)
                ).all()
            )

    def _processed(self, row: InboxEvent) -> None:
        with session_scope(self.engine) as session:
            session.execute(
                update(InboxEvent).where(col(InboxEvent.id) == row.id).values(processed_at=utcnow())
            )

    async def _from_wix(self, account_id: str) -> int:
        missing = [c for c in self.connectors.values() if not self._linked(c.name, wix=account_id)]
        if len(missing) < len(self.connectors):  # linked meanwhile: the change still counts
            mark_dirty(self.engine, now=utcnow(), wix_account_id=account_id)
        if not missing:
            return 0
        try:
            account = await self.wix.get_account(account_id)
        except NotFoundError:
            return 0
        email, phone, name = await self._wix_keys(account)
        made = 0
        for connector in missing:
            found = await self._candidates(connector, email, phone)
            if found is None:
                self._ambiguous(connector.name, f"wix account {account_id}")
                continue
            if found:
                made += self._link(connector.name, account, found[0].id, created=False)
            elif connector.settings.create_missing in ("external", "both"):
                made += await self._create(connector, account, email, phone, name)
        return made

    async def _create(
        self,
        connector: Connector,
        account: Account,
        email: str | None,
        phone: str | None,
        name: str | None,
    ) -> int:
        """Create the Wix account's missing counterpart, crash-safe: the link is written
        first, naming the creation's key (`PENDING` + key, bases 0/0, not dirty), then the
        account is created under that key, then the link names it. A process that dies in
        between leaves the pending link, which `_finish_creations` completes with the same
        key — so the account syncd made is never mistaken later for one that was there before
        (which would start the link under the initial policy and could take Wix's points)."""
        key = f"create-for-wix-{account.id}"
        if not self._link(connector.name, account, PENDING + key, created=True, pending=True):
            return 0
        return await self._complete(connector, account, key, email, phone, name)

    async def _complete(
        self,
        connector: Connector,
        account: Account,
        key: str,
        email: str | None,
        phone: str | None,
        name: str | None,
    ) -> int:
        """Create the account under `key` (again, if a process stopped: the key makes that
        safe) and let the pending link name it; a creation refused for good drops the link."""
        pending = and_(
            col(Link.connector) == connector.name, col(Link.external_id) == PENDING + key
        )
        try:
            created = await connector.create_account(email=email, phone=phone, name=name, key=key)
        except SkipError as error:
            event(log, "match.not_created", connector=connector.name, error=str(error))
            with session_scope(self.engine) as session:
                session.execute(delete(Link).where(pending))
            return 0
        with session_scope(self.engine) as session:
            session.execute(
                update(Link)
                .where(pending)
                .values(external_id=created.id, dirty=True, dirty_since=utcnow())
            )
        event(log, "match.created", connector=connector.name, wix=account.id, external=created.id)
        return 1

    async def _finish_creations(self) -> int:
        """Complete the creations a process left pending when it stopped."""
        with session_scope(self.engine) as session:
            left = session.exec(select(Link).where(col(Link.external_id).startswith(PENDING))).all()
        made = 0
        for link in left:
            connector = self.connectors.get(link.connector)
            if connector is None:
                continue
            try:
                account = await self.wix.get_account(link.wix_account_id)
            except NotFoundError:
                continue
            email, phone, name = await self._wix_keys(account)
            key = link.external_id.removeprefix(PENDING)
            made += await self._complete(connector, account, key, email, phone, name)
        return made

    async def _from_external(self, connector: Connector, external_id: str) -> int:
        if self._linked(connector.name, external=external_id):
            mark_dirty(self.engine, now=utcnow(), connector=connector.name, external_id=external_id)
            return 0
        try:
            ext = await connector.describe_account(external_id)
        except NotFoundError:
            return 0
        candidates: list[Account] = []
        if ext.email and "email" in connector.settings.match_on:
            candidates = await self.wix.find_accounts_by_email(ext.email)
        if not candidates and ext.phone and "phone" in connector.settings.match_on:
            candidates = await self._wix_accounts_by_phone(ext.phone)
        unlinked = [a for a in candidates if not self._linked(connector.name, wix=a.id)]
        if len(unlinked) > 1:
            self._ambiguous(connector.name, f"{connector.name} account {external_id}")
            return 0
        if unlinked:
            return self._link(connector.name, unlinked[0], external_id, created=False, spread=True)
        if connector.settings.create_missing not in ("wix", "both"):
            return 0
        first, last = split_name(ext.name)
        contact_id, _ = await self.wix.create_contact(
            email=ext.email, phone=ext.phone, first_name=first, last_name=last
        )
        account, _ = await self.wix.ensure_account(contact_id)
        return self._link(connector.name, account, external_id, created=True, spread=True)

    async def _wix_keys(self, account: Account) -> tuple[str | None, str | None, str | None]:
        email, phone = email_key(account.email), None
        if account.contact_id:
            contact = await self.wix.get_contact(account.contact_id)
            email = email or email_key(next(iter(contact.emails), None))
            phone = next((p for p in map(phone_key, contact.phones) if p), None)
        return email, phone, account.name

    async def _wix_accounts_by_phone(self, phone: str) -> list[Account]:
        contacts, _ = await self.wix.query_contacts(filter={"info.phones.e164Phone": phone})
        found = [await self.wix.get_account_by_contact(c.id) for c in contacts]
        return [a for a in found if a is not None]

    async def _candidates(
        self, connector: Connector, email: str | None, phone: str | None
    ) -> list[ExternalAccount] | None:
        """[the one unlinked candidate], [] when there is none, None when several answer."""
        for key, value in (("email", email), ("phone", phone)):
            if not value or key not in connector.settings.match_on:
                continue
            found = [
                a
                for a in await connector.find_accounts(key, value)
                if not self._linked(connector.name, external=a.id)
            ]
            if len(found) > 1:
                return None
            if found:
                return found
        return []

    def _linked(
        self, connector: str, *, wix: str | None = None, external: str | None = None
    ) -> bool:
        with session_scope(self.engine) as session:
            query = select(Link.id).where(Link.connector == connector)
            query = query.where(
                Link.wix_account_id == wix if wix is not None else Link.external_id == external
            )
            return session.exec(query).first() is not None

    def _link(
        self,
        connector: str,
        account: Account,
        external_id: str,
        *,
        created: bool,
        spread: bool = False,
        pending: bool = False,
    ) -> int:
        """A new link, dirty at once; a created account starts at bases (0, 0).

        `spread` (a customer new at one spoke): with other spokes, the Wix account goes back
        into the inbox in the same transaction, so the matcher also links or creates it at
        every other spoke."""
        now = utcnow()
        try:
            with session_scope(self.engine) as session:
                if spread and any(name != connector for name in self.connectors):
                    session.add(
                        InboxEvent(
                            source="wix",
                            event_id=f"linked:{connector}:{account.id}",
                            event_type="syncd.linked",
                            entity_id=account.id,
                            received_at=now,
                        )
                    )
                session.add(
                    Link(
                        connector=connector,
                        wix_account_id=account.id,
                        wix_contact_id=account.contact_id,
                        external_id=external_id,
                        wix_base=0 if created else None,
                        ext_base=0 if created else None,
                        dirty=not pending,
                        dirty_since=None if pending else now,
                    )
                )
        except IntegrityError:
            return 0  # another worker or replica linked it first
        event(
            log,
            "match.linked",
            connector=connector,
            wix=account.id,
            external=external_id,
            created=created,
        )
        return 1

    def _ambiguous(self, connector: str, what: str) -> None:
        detail = f"{what}: several unlinked {connector} candidates share its match key"
        with session_scope(self.engine) as session:
            open_already = session.exec(
                select(Conflict.id).where(
                    Conflict.kind == "ambiguous_match",
                    Conflict.detail == detail,
                    Conflict.status == ConflictStatus.OPEN,
                )
            ).first()
            if open_already is None:
                session.add(Conflict(kind="ambiguous_match", detail=detail))
        event(log, "match.ambiguous", level=logging.WARNING, connector=connector, account=what)
