"""The `hubspot` connector: a numeric contact property of HubSpot CRM as a spoke of syncd.

HubSpot has no increment, no idempotency key and no conditional update, so this connector
writes absolute values and makes them exactly-once itself. Behaviour chosen where the
interface leaves room:
- The balance is the points property (`points_property`) as an int: missing or empty is 0,
  "120.0" is 120; anything else is a SkipError from `get_account` and leaves the contact out
  of `iter_accounts` (a `hubspot.points_unreadable` warning, counted in `unreadable_balances`).
  `version` is `lastmodifieddate`; the email is lower-cased, the phone made E.164 when it can
  be read as a number (None otherwise).
- `find_accounts("email")` reads the contact by `idProperty=email` (strongly consistent);
  `find_accounts("phone")` searches `phone EQ value`: search lags writes by seconds, and
  matches the phone as it was typed into HubSpot.
- `create_account` needs an email (HubSpot's only unique contact key, which is what keeps a
  retry from creating two); a taken email (409) returns the contact that has it.
- `apply_delta` reads the points and the history of `operation_property`; if a value there
  records `key` the write was made before and is not made again. Otherwise one PATCH sets the
  points to current + delta and the operation property to `<key>:<new value>`, both at once.
  The PATCH is never resent blind (an unknown outcome is read back). A new balance below zero
  is refused (SkipError), as Square refuses it. Between that read and the PATCH an operator's
  edit would be overwritten: HubSpot has no compare-and-set, so the window is kept to two
  calls, and an edit made before it is kept (the delta is added to it).
- `remote_id` of a write is the operation property's value, `<key>:<new value>`, which
  `read_back` finds again in the property's history (no earlier than `since` minus
  `READ_BACK_SKEW`).
- `changes_since` takes epoch milliseconds: it searches `lastmodifieddate` from the cursor
  minus `CHANGES_OVERLAP` (which covers search lag), oldest first, restarting the query from
  the last date seen when a query reaches HubSpot's 10,000-result stop. A contact whose points
  equal the value its operation property records was last written by syncd: it is left out
  unless the history of its points shows another change in the window.
- Webhooks are verified by signature v3 (`client_secret`, `webhook_url`), refused when their
  timestamp is more than 5 minutes off; `contact.merge` names the merged contacts in
  `merged_ids`, and events of other objects are ignored.
- `prepare` creates the points and operation properties when they are missing and
  `create_properties` is true; otherwise a missing one is a FatalError saying what to create.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta

import httpx

from connectors.base import (
    AccountPage,
    Capabilities,
    Change,
    ChangesPage,
    Connector,
    ExternalAccount,
    ExternalEvent,
    ReadBack,
    ReadBackResult,
    WriteResult,
    settings_as,
)
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.mapping import (
    CONTACT_PROPERTIES,
    InvalidPoints,
    Json,
    Version,
    edited_by_others,
    from_ms,
    history,
    looks_ours,
    modified_ms,
    operation_parts,
    operation_value,
    overwritten,
    to_account,
    to_ms,
    verify_webhook,
)
from connectors.hubspot.settings import HubSpotSettings
from syncd.budget import TokenBucket
from syncd.clock import utcnow
from syncd.errors import (
    DuplicateError,
    FatalError,
    NotFoundError,
    SkipError,
    SyncdError,
    WebhookRejected,
)
from syncd.logs import event, get_logger
from syncd.names import split_name
from syncd.reconcile.keys import email_key
from syncd.retry import RetryPolicy
from syncd.settings import ConnectorSettings

log = get_logger(__name__)
READ_BACK_SKEW = timedelta(minutes=5)  # our clock against HubSpot's
CHANGES_OVERLAP = timedelta(seconds=60)  # each poll re-reads this much: search lags writes
SEARCH_MAX_RESULTS = 10_000  # HubSpot answers no further page of one search query
NO_EMAIL = "hubspot contacts are created by email (their unique key); this customer has none"
_MODIFIED = "lastmodifieddate"


class HubSpotConnector(Connector):
    """HubSpot contacts: absolute writes made exactly-once, v3 webhooks, a search feed."""

    settings_model = HubSpotSettings
    capabilities = Capabilities(
        delta_writes=False,
        idempotency_keys=False,
        webhooks=True,
        change_feed=True,
        find_by=frozenset({"email", "phone"}),
        create_accounts=True,
    )

    def __init__(
        self,
        settings: ConnectorSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        budget: TokenBucket | None = None,
        search_budget: TokenBucket | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        hubspot = settings_as(HubSpotSettings, settings)
        super().__init__(hubspot)
        self.hubspot = hubspot
        self.client = HubSpotClient(
            hubspot, transport=transport, budget=budget, search_budget=search_budget, retry=retry
        )
        self.points = hubspot.points_property
        self.operation = hubspot.operation_property
        self.search_max_results = SEARCH_MAX_RESULTS  # an emulator may be set to stop sooner
        self.unreadable_balances = 0

    async def aclose(self) -> None:
        await self.client.aclose()

    @property
    def calls(self) -> int:
        return self.client.calls

    @property
    def _account_properties(self) -> tuple[str, ...]:
        return (*CONTACT_PROPERTIES, self.points, self.operation)

    # -- setup ---------------------------------------------------------------------------------

    async def prepare(self) -> list[str]:
        """Create the points and operation properties when missing (and allowed)."""
        created: list[str] = []
        for definition in self._property_definitions():
            name = str(definition["name"])
            try:
                await self.client.get_property(name)
                continue
            except NotFoundError:
                if not self.hubspot.create_properties:
                    raise FatalError(
                        f"HubSpot has no contact property {name!r}: create it in HubSpot "
                        f"(Settings, Properties, Contact properties: internal name {name}, "
                        f"{definition['fieldType']} field) or set "
                        f"connectors.{self.name}.create_properties = true",
                        remote=self.name,
                    ) from None
            try:
                await self.client.create_property(definition)
            except DuplicateError:
                continue  # created meanwhile by someone else
            created.append(f"created HubSpot contact property {name} ({definition['label']})")
        return created

    def _property_definitions(self) -> list[Json]:
        common = {"groupName": "contactinformation"}
        return [
            {
                "name": self.points,
                "label": "Wix loyalty points",
                "type": "number",
                "fieldType": "number",
                "description": "Loyalty points, kept equal to the Wix Loyalty Program by syncd",
                **common,
            },
            {
                "name": self.operation,
                "label": "syncd last operation",
                "type": "string",
                "fieldType": "text",
                "description": "The last points write of syncd: operation id and value",
                **common,
            },
        ]

    # -- reading -------------------------------------------------------------------------------

    async def iter_accounts(self, cursor: str | None = None) -> AsyncIterator[AccountPage]:
        """Every contact, 100 a page, by id; each page's cursor (HubSpot's `after`) resumes."""
        while True:
            raw, after = await self.client.list_contacts(self._account_properties, after=cursor)
            yield AccountPage(self._readable(raw), after)
            if not after:
                return
            cursor = after

    async def get_account(self, account_id: str) -> ExternalAccount:
        """One contact read fresh (one call); SkipError when its points are not a number."""
        return self._account(await self.client.get_contact(account_id, self._account_properties))

    async def find_accounts(self, key: str, value: str) -> list[ExternalAccount]:
        """The contact with this email (at most one), or the contacts with this phone."""
        if key == "email":
            email = email_key(value)
            if email is None:
                return []
            try:
                contact = await self.client.get_contact(
                    email, self._account_properties, id_property="email"
                )
            except NotFoundError:
                return []
            return [self._account(contact)]
        if key == "phone":
            found: list[ExternalAccount] = []
            after: str | None = None
            while True:
                filters = [{"propertyName": "phone", "operator": "EQ", "value": value}]
                page, after = await self.client.search(
                    filters, self._account_properties, after=after
                )
                found += [self._account(c) for c in page]
                if not after:
                    return found
        raise ValueError(f"hubspot cannot find accounts by {key!r}: use 'email' or 'phone'")

    def _account(self, contact: Json) -> ExternalAccount:
        try:
            return to_account(contact, self.points)
        except InvalidPoints as error:
            raise SkipError(
                f"{self.points} is {error}: fix it in HubSpot",
                remote=self.name,
                code="INVALID_POINTS",
                account=str(contact.get("id")),
            ) from None

    def _readable(self, raw: list[Json]) -> list[ExternalAccount]:
        accounts: list[ExternalAccount] = []
        for contact in raw:
            try:
                accounts.append(to_account(contact, self.points))
            except InvalidPoints as error:
                self.unreadable_balances += 1
                event(
                    log,
                    "hubspot.points_unreadable",
                    level=logging.WARNING,
                    connector=self.name,
                    account=str(contact.get("id")),
                    error=str(error),
                    unreadable=self.unreadable_balances,
                )
        return accounts

    # -- writing -------------------------------------------------------------------------------

    async def create_account(
        self, *, email: str | None, phone: str | None, name: str | None, key: str
    ) -> ExternalAccount:
        """A contact with points 0, made at most once per email (not per `key`: HubSpot
        refuses a second contact with the same email, and the first one is returned)."""
        address = email_key(email)
        if address is None:
            raise SkipError(NO_EMAIL, remote=self.name)
        first, last = split_name(name)
        fields = {"email": address, "phone": phone, "firstname": first, "lastname": last}
        properties = {k: v for k, v in fields.items() if v} | {self.points: "0"}
        try:
            contact = await self.client.create_contact(properties)
        except DuplicateError as taken:
            existing, by = (taken.existing_id, None) if taken.existing_id else (address, "email")
            contact = await self.client.get_contact(
                existing, self._account_properties, id_property=by
            )
        return self._account(contact)

    async def apply_delta(
        self, account_id: str, delta: int, *, key: str, reason: str
    ) -> WriteResult:
        """Set the points to current + `delta` unless the write `key` was made already.

        `reason` is not stored (a contact has no place for it): the operation property
        carries the key. SkipError when the points are unreadable or would go below zero."""
        if delta == 0:
            raise ValueError("apply_delta needs a non-zero delta")
        names = (self.points, self.operation)
        contact = await self.client.get_contact(account_id, names, with_history=names)
        made = self._written(contact, key)
        if made is not None:
            return WriteResult(remote_id=made.value)
        current = self._account(contact).balance
        read_at = max((v.at for v in history(contact, self.points)), default=None)
        target = current + delta
        if target < 0:
            raise SkipError(
                f"the balance would go below zero ({current} {delta:+d})",
                remote=self.name,
                code="NEGATIVE_BALANCE",
                account=account_id,
            )
        value = operation_value(key, target)
        await self.client.update_contact(
            account_id, {self.points: str(target), self.operation: value}
        )
        await self._restore_overwritten(account_id, key, current, read_at)
        return WriteResult(remote_id=value)

    async def _restore_overwritten(
        self, account_id: str, key: str, read: int, read_at: datetime | None
    ) -> None:
        """An edit that landed between our read and our PATCH was overwritten by it (HubSpot
        has no compare-and-set): put its change back on top of ours. The points then differ
        from what the operation property records, so the edit is a change like any other and
        reaches Wix. Best effort, one more read: a failure here is logged, not raised (the
        write itself was made)."""
        names = (self.points, self.operation)
        try:
            after = await self.client.get_contact(account_id, names, with_history=names)
            ours = self._written(after, key)
            missing = 0 if ours is None else overwritten(after, self.points, read, read_at, ours)
            if missing:
                now = self._account(after).balance
                await self.client.update_contact(account_id, {self.points: str(now + missing)})
                event(
                    log,
                    "hubspot.overwrite_restored",
                    level=logging.WARNING,
                    contact=account_id,
                    operation=key,
                    points=missing,
                )
        except (SyncdError, InvalidPoints) as error:
            event(
                log,
                "hubspot.overwrite_check_failed",
                level=logging.WARNING,
                contact=account_id,
                operation=key,
                error=str(error),
            )

    async def read_back(self, account_id: str, *, key: str, since: datetime) -> ReadBackResult:
        """APPLIED when the operation property's history records `key` since `since`."""
        contact = await self.client.get_contact(
            account_id, [self.operation], with_history=[self.operation]
        )
        made = self._written(contact, key, since=since - READ_BACK_SKEW)
        if made is None:
            return ReadBackResult(ReadBack.ABSENT)
        return ReadBackResult(ReadBack.APPLIED, made.value)

    def _written(self, contact: Json, key: str, *, since: datetime | None = None) -> Version | None:
        for version in history(contact, self.operation):
            if operation_parts(version.value)[0] == key and (since is None or version.at >= since):
                return version
        return None

    # -- changes -------------------------------------------------------------------------------

    async def changes_since(self, cursor: str | None) -> ChangesPage:
        """Contacts modified since `cursor` (epoch ms) by someone else; None starts now."""
        if cursor is None:
            return ChangesPage([], str(to_ms(utcnow())))
        try:
            watermark = int(cursor)
        except ValueError:
            raise ValueError(f"not a hubspot change cursor: {cursor!r}") from None
        start = watermark - int(CHANGES_OVERLAP.total_seconds() * 1000)
        newest = watermark
        found: dict[str, tuple[Change, bool]] = {}  # event id → (change, looks like ours)
        async for contact in self._modified_since(start):
            newest = max(newest, modified_ms(contact))
            stamp = (contact.get("properties") or {}).get(_MODIFIED) or contact.get("updatedAt")
            change = Change(f"{contact['id']}@{stamp}", str(contact["id"]))
            ours = looks_ours(contact, self.points, self.operation)
            found.setdefault(change.event_id, (change, ours))
        suspects = list(dict.fromkeys(c.account_id for c, ours in found.values() if ours))
        edited = await self._edited_by_others(suspects, since=from_ms(start))
        changes = [c for c, ours in found.values() if not ours or c.account_id in edited]
        return ChangesPage(changes, str(newest))

    async def _modified_since(self, start_ms: int) -> AsyncIterator[Json]:
        """Contacts by lastmodifieddate ascending from `start_ms`, past the 10,000-result stop
        (a query that reaches it starts again from the last date seen: repeats possible)."""
        sorts = [{"propertyName": _MODIFIED, "direction": "ASCENDING"}]
        wanted = (self.points, self.operation, _MODIFIED)
        query_from, after = start_ms, None
        while True:
            filters = [{"propertyName": _MODIFIED, "operator": "GTE", "value": str(query_from)}]
            page, after = await self.client.search(filters, wanted, sorts=sorts, after=after)
            for contact in page:
                yield contact
            if not page or after is None:
                return
            if not (after.isdigit() and int(after) >= self.search_max_results):
                continue  # the next page is within the query's reach
            last = modified_ms(page[-1])
            if last <= query_from:  # a whole query within one millisecond: move past it
                event(log, "hubspot.search_stop_skipped", level=logging.WARNING, at=last)
                last = query_from + 1
            query_from, after = last, None

    async def _edited_by_others(self, contact_ids: Sequence[str], *, since: datetime) -> set[str]:
        """Those of `contact_ids` whose points history since `since` holds a value syncd did
        not write (an edit that syncd's later write built on)."""
        if not contact_ids:
            return set()
        names = (self.points, self.operation)
        contacts = await self.client.read_contacts(contact_ids, names, names)
        return {
            str(c["id"])
            for c in contacts
            if edited_by_others(c, self.points, self.operation, since=since)
        }

    # -- webhooks ------------------------------------------------------------------------------

    def verify_webhook(
        self, raw_body: bytes, headers: Mapping[str, str], *, now: datetime
    ) -> list[ExternalEvent]:
        """Check signature v3 and its timestamp, then parse the array of contact events."""
        secret, url = self.hubspot.client_secret, self.hubspot.webhook_url
        if secret is None or not url:
            raise WebhookRejected("hubspot webhooks need client_secret and webhook_url")
        return verify_webhook(raw_body, headers, secret=secret.get_secret_value(), url=url, now=now)
