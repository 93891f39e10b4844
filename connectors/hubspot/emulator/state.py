"""The HubSpot portal's contacts without HTTP: create, update, archive, merge, look up.

Every change goes through here, appends property history, moves `lastmodifieddate`, keeps a
version for search, and tells the listeners (the webhook dispatcher) with `ContactChange`s:
`creation` (then a `propertyChange` per value set), `propertyChange` per changed value,
`deletion`, `merge`. A write of the value a property already holds changes nothing (no
history entry, no webhook). Refusals raise `HubSpotApiError`. One re-entrant lock makes each
call atomic, so test helpers in one thread and the served app in another share the model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from connectors.hubspot.emulator.contacts import Contact, Source
from connectors.hubspot.emulator.errors import conflict, not_found, validation_error
from connectors.hubspot.emulator.knobs import HubSpotKnobs
from connectors.hubspot.emulator.properties import PropertyBook, PropertyDef
from connectors.hubspot.emulator.wire import Clock, IdFactory, utc_millis

OPERATOR_USER_ID = 7_100_001  # the HubSpot user whose edits `set_points` and `merge` stand for
UI = Source("CRM_UI", f"userId:{OPERATOR_USER_ID}", OPERATOR_USER_ID)
IMPORT = Source("IMPORT")


@dataclass(frozen=True)
class ContactChange:
    """One change for the webhook dispatcher (`subscriptionType` is `contact.<kind>`)."""

    kind: str  # "creation" | "propertyChange" | "deletion" | "merge"
    object_id: str
    at: datetime
    source: Source
    property_name: str | None = None
    value: str | None = None  # "" when a value was cleared
    merged_ids: tuple[str, ...] = ()
    properties_moved: int = 0


class ContactState:
    """One portal: contact properties and contacts."""

    def __init__(
        self,
        knobs: HubSpotKnobs,
        clock: Clock,
        ids: IdFactory,
        *,
        app_id: int,
        points_property: str,
        define_points_property: bool,
    ) -> None:
        self.knobs = knobs
        self.clock = clock
        self.ids = ids
        self.api = Source("INTEGRATION", str(app_id))
        self.points_property = points_property
        self.define_points_property = define_points_property
        self.lock = threading.RLock()
        self.listeners: list[Callable[[ContactChange], None]] = []
        self.contacts: dict[str, Contact] = {}
        self.properties = self._new_properties()

    def _new_properties(self) -> PropertyBook:
        book = PropertyBook(self.clock())
        if self.define_points_property:
            book.define(
                PropertyDef(
                    self.points_property,
                    "Wix loyalty points",
                    "number",
                    "number",
                    self.clock(),
                    description="Loyalty points balance, kept equal to the Wix Loyalty Program.",
                )
            )
        return book

    def reset(self) -> None:
        """No contacts; the standard properties (and the points property if it is defined
        at start) only."""
        with self.lock:
            self.contacts.clear()
            self.properties = self._new_properties()

    # ---- reads ---------------------------------------------------------------------------

    def live(self) -> list[Contact]:
        """Every contact neither archived nor merged away, oldest (lowest id) first."""
        return sorted((c for c in self.contacts.values() if c.live), key=lambda c: int(c.id))

    def archived(self) -> list[Contact]:
        """Every archived contact, lowest id first."""
        found = (c for c in self.contacts.values() if c.archived_at is not None)
        return sorted(found, key=lambda c: int(c.id))

    def find(self, key: str, id_property: str | None = None, *, archived: bool = False) -> Contact:
        """The contact whose `id_property` (default the record id) is `key`; 404 otherwise.
        `email` matches case-insensitively, also the emails of contacts merged into it."""
        if id_property in (None, "", "hs_object_id"):
            found = self._by_id(key, archived)
        elif id_property == "email":
            found = self._by_email(key)
        else:
            prop = self.properties.defined.get(id_property or "")
            if prop is None or not prop.has_unique_value:
                raise validation_error(f"Property {id_property} is not a unique property.")
            found = self._by_unique(id_property or "", key)
        if found is None:
            raise not_found(f"Object not found.  objectId are usually numeric. ({key})")
        return found

    def _by_id(self, contact_id: str, archived: bool) -> Contact | None:
        contact = self.contacts.get(contact_id)
        if contact is None or (contact.archived_at is not None) != archived:
            return None
        while contact is not None and contact.merged_into is not None:
            if self.knobs.merged_lookup != "primary":
                return None
            contact = self.contacts.get(contact.merged_into)
        return contact

    def _by_email(self, email: str) -> Contact | None:
        wanted = email.lower()
        for contact in self.live():
            if contact.email == wanted or wanted in contact.merged_emails:
                return contact
        return None

    def _by_unique(self, name: str, value: str) -> Contact | None:
        return next((c for c in self.live() if c.values.get(name) == value), None)

    # ---- writes --------------------------------------------------------------------------

    def create(
        self, values: dict[str, str | None], source: Source, *, notify: bool = True
    ) -> Contact:
        """A new contact with `values` (already normalized); 409 for a taken email or unique
        value."""
        with self.lock:
            self._check_unique(values, None)
            at = self.clock()
            contact = Contact(self.ids.object_id(), at, at)
            contact.record("hs_object_id", contact.id, at, source)
            contact.record("createdate", utc_millis(at), at, source)
            changed = [n for n, v in values.items() if contact.record(n, v, at, source)]
            contact.touch(at, self.knobs.search_lag_seconds)
            self.contacts[contact.id] = contact
            if notify:
                self._tell(ContactChange("creation", contact.id, at, source))
                self._tell_values(contact, changed, at, source)
            return contact

    def update(self, contact: Contact, values: dict[str, str | None], source: Source) -> Contact:
        """Write `values` (already normalized) to a live contact; unchanged ones are skipped."""
        with self.lock:
            self._check_unique(values, contact.id)
            at = self.clock()
            changed = [n for n, v in values.items() if contact.record(n, v, at, source)]
            if changed:
                contact.touch(at, self.knobs.search_lag_seconds)
                self._tell_values(contact, changed, at, source)
            return contact

    def archive(self, contact: Contact, source: Source) -> None:
        """Move a contact to the recycling bin (contact.deletion)."""
        with self.lock:
            at = self.clock()
            contact.archived_at = at
            contact.touch(at, self.knobs.search_lag_seconds)
            self._tell(ContactChange("deletion", contact.id, at, source))

    def merge(self, primary: Contact, secondary: Contact, source: Source) -> Contact:
        """Merge `secondary` into `primary`: the primary keeps its id and its values, takes
        the secondary's values for properties it has none of (with their history) and its
        email as an extra one; the secondary disappears (contact.merge)."""
        with self.lock:
            if primary.id == secondary.id:
                raise validation_error("Cannot merge a contact with itself.")
            at = self.clock()
            moved = 0
            for name, value in secondary.values.items():
                prop = self.properties.defined.get(name)
                if prop is None or prop.read_only or name in primary.values:
                    continue
                primary.values[name] = value
                primary.history[name] = list(secondary.history.get(name, []))
                moved += 1
            primary.merged_emails.extend(
                e for e in [secondary.email, *secondary.merged_emails] if e
            )
            merged = [*primary.values.get("hs_merged_object_ids", "").split(";"), secondary.id]
            primary.record("hs_merged_object_ids", ";".join(i for i in merged if i), at, source)
            secondary.merged_into = primary.id
            secondary.snapshot(at, self.knobs.search_lag_seconds)
            primary.touch(at, self.knobs.search_lag_seconds)
            self._tell(
                ContactChange(
                    "merge",
                    primary.id,
                    at,
                    source,
                    merged_ids=(secondary.id,),
                    properties_moved=moved,
                )
            )
            return primary

    def _check_unique(self, values: dict[str, str | None], own_id: str | None) -> None:
        email = values.get("email")
        if email:
            holder = self._by_email(email)
            if holder is not None and holder.id != own_id:
                raise conflict(f"Contact already exists. Existing ID: {holder.id}")
        for name, value in values.items():
            prop = self.properties.defined.get(name)
            if value is None or prop is None or not prop.has_unique_value:
                continue
            holder = self._by_unique(name, value)
            if holder is not None and holder.id != own_id:
                raise conflict(
                    f"A contact with the value '{value}' for the unique property '{name}' "
                    f"already exists. Existing ID: {holder.id}"
                )

    def _tell_values(
        self, contact: Contact, names: Iterable[str], at: datetime, source: Source
    ) -> None:
        for name in names:
            value = contact.values.get(name, "")
            self._tell(ContactChange("propertyChange", contact.id, at, source, name, value))

    def _tell(self, change: ContactChange) -> None:
        for listener in self.listeners:
            listener(change)
