"""A contact record and how the API shows it: values, property history, search versions.

Values are strings keyed by property name; a property without a value has no key. Each write
appends to the property's history (oldest first here, newest first on the wire, as HubSpot
answers `propertiesWithHistory`). Each change also appends a `Version`, what the search index
sees once `search_lag_seconds` have passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from connectors.hubspot.emulator.wire import Json, utc_millis

# Shown when a read names no properties (HubSpot's defaults for contacts).
DEFAULT_PROPERTIES = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
# Shown on every read, whatever was asked for.
ALWAYS_SHOWN = ("createdate", "hs_object_id", "lastmodifieddate")


@dataclass(frozen=True)
class Source:
    """Who wrote a value: `sourceType` in history and `changeSource` in webhooks."""

    type: str  # INTEGRATION (API), CRM_UI (someone in HubSpot), IMPORT (seeded)
    id: str | None = None  # sourceId: the app id for API writes, "userId:n" for the UI
    user_id: int | None = None  # updatedByUserId (UI edits)


@dataclass(frozen=True)
class HistoryEntry:
    """One value a property held, from when, written by whom."""

    value: str
    at: datetime
    source: Source

    def wire(self) -> Json:
        """The SDK's ValueWithTimestamp."""
        entry: Json = {
            "value": self.value,
            "timestamp": utc_millis(self.at),
            "sourceType": self.source.type,
        }
        if self.source.id is not None:
            entry["sourceId"] = self.source.id
        if self.source.user_id is not None:
            entry["updatedByUserId"] = self.source.user_id
        return entry


@dataclass(frozen=True)
class Version:
    """The record as it stood after one change (`gone`: archived or merged away)."""

    at: datetime
    values: dict[str, str]
    updated_at: datetime
    gone: bool = False


@dataclass
class Contact:
    """One contact record."""

    id: str
    created_at: datetime
    updated_at: datetime
    values: dict[str, str] = field(default_factory=dict)
    history: dict[str, list[HistoryEntry]] = field(default_factory=dict)
    archived_at: datetime | None = None
    merged_into: str | None = None
    merged_emails: list[str] = field(default_factory=list)  # of contacts merged into this one
    versions: list[Version] = field(default_factory=list)

    @property
    def live(self) -> bool:
        """Neither archived nor merged into another contact."""
        return self.archived_at is None and self.merged_into is None

    @property
    def email(self) -> str | None:
        """The email in lower case (how it is matched), if any."""
        email = self.values.get("email")
        return email.lower() if email else None

    def record(self, name: str, value: str | None, at: datetime, source: Source) -> bool:
        """Set (or clear, with None) one value with a history entry; False if unchanged."""
        if self.values.get(name) == value:
            return False
        if value is None:
            self.values.pop(name, None)
        else:
            self.values[name] = value
        self.history.setdefault(name, []).append(HistoryEntry(value or "", at, source))
        return True

    def touch(self, at: datetime, lag_seconds: float) -> None:
        """Mark a change at `at`: `updatedAt`/`lastmodifieddate` move, a version is kept."""
        self.updated_at = at
        self.values["lastmodifieddate"] = utc_millis(at)
        self.snapshot(at, lag_seconds)

    def snapshot(self, at: datetime, lag_seconds: float) -> None:
        """Keep the current state for search, dropping versions no search can see any more."""
        self.versions.append(Version(at, dict(self.values), self.updated_at, not self.live))
        horizon = at.timestamp() - lag_seconds
        settled = [i for i, v in enumerate(self.versions) if v.at.timestamp() <= horizon]
        if settled:
            del self.versions[: settled[-1]]

    def indexed(self, cutoff: datetime) -> Version | None:
        """The version search sees at `cutoff` (now minus the lag); None if not yet indexed
        or gone."""
        seen = [v for v in self.versions if v.at <= cutoff]
        if not seen:
            return None
        return None if seen[-1].gone else seen[-1]

    def wire(
        self,
        properties: list[str] | None = None,
        with_history: list[str] | None = None,
        *,
        known: set[str] | None = None,
    ) -> Json:
        """The SDK's SimplePublicObject: `properties` (None = every value; [] = the
        defaults), each known property asked for with a value or null, plus
        `propertiesWithHistory` for `with_history` (newest first)."""
        if properties is None:
            shown: dict[str, str | None] = dict(sorted(self.values.items()))
        else:
            names = list(properties or DEFAULT_PROPERTIES) + list(ALWAYS_SHOWN)
            shown = {n: self.values.get(n) for n in names if known is None or n in known}
        return self.render(shown, self.created_at, self.updated_at) | self._history(
            with_history, known
        )

    def render(self, shown: dict[str, str | None], created: datetime, updated: datetime) -> Json:
        """The object around a set of shown values."""
        body: Json = {
            "id": self.id,
            "properties": shown,
            "createdAt": utc_millis(created),
            "updatedAt": utc_millis(updated),
            "archived": self.archived_at is not None,
        }
        if self.archived_at is not None:
            body["archivedAt"] = utc_millis(self.archived_at)
        return body

    def _history(self, names: list[str] | None, known: set[str] | None) -> Json:
        if not names:
            return {}
        return {
            "propertiesWithHistory": {
                name: [entry.wire() for entry in reversed(self.history.get(name, []))]
                for name in names
                if known is None or name in known
            }
        }
