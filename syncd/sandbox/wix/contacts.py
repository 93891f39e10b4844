"""The site's Contacts (v4) as the emulator keeps them: creation, duplicates, phones, wire shape."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from syncd.sandbox.indexes import Grouped
from syncd.sandbox.wix.errors import WixApiError, invalid, not_found
from syncd.sandbox.wix.ordered import CreationOrder, Key, Records
from syncd.sandbox.wix.wire import Clock, IdFactory, iso, json_copy

# Calling codes for the countries a demo is likely to use; others get no e164Phone unless the
# phone is typed with a leading "+".
CALLING_CODES = {
    "US": "1",
    "CA": "1",
    "GB": "44",
    "IE": "353",
    "DE": "49",
    "FR": "33",
    "ES": "34",
    "IT": "39",
    "NL": "31",
    "BE": "32",
    "CH": "41",
    "AT": "43",
    "SE": "46",
    "NO": "47",
    "DK": "45",
    "FI": "358",
    "PL": "48",
    "PT": "351",
    "IL": "972",
    "AU": "61",
    "NZ": "64",
    "JP": "81",
    "IN": "91",
    "BR": "55",
    "MX": "52",
    "ZA": "27",
    "SG": "65",
}


def e164(phone: str, country_code: str | None) -> str | None:
    """The E.164 form of a typed phone, when it can be derived (else None)."""
    digits = re.sub(r"\D", "", phone)
    if phone.strip().startswith("+"):
        return f"+{digits}" if 8 <= len(digits) <= 15 else None
    code = CALLING_CODES.get((country_code or "").upper())
    if code is None:
        return None
    if code == "1":
        if len(digits) == 11 and digits.startswith("1"):
            digits = digits[1:]
        return f"+1{digits}" if len(digits) == 10 else None
    national = digits.lstrip("0")
    return f"+{code}{national}" if 6 <= len(national) <= 12 else None


class ContactBook:
    """All contacts of the site, keyed by id, in creation order."""

    def __init__(self, clock: Clock, new_id: IdFactory) -> None:
        self._clock = clock
        self._new_id = new_id
        self.contacts: dict[str, dict[str, Any]] = {}
        self.order: CreationOrder[dict[str, Any]] = CreationOrder(_contact_key)
        # Contacts by email (lower case), oldest first, and the first with each phone:
        # duplicates and an email's contacts are found at once.
        self._with_email: Grouped[str, str] = Grouped()
        self._phone_owners: dict[str, str] = {}

    def records(self) -> Records:
        """The contacts as the query route pages them: the stored dicts themselves, which
        nothing changes once made and the route only encodes, so a page copies nothing."""
        return Records(self.order, _as_stored)

    def get(self, contact_id: str) -> dict[str, Any]:
        """The contact as the API returns it; 404 when unknown."""
        contact = self.contacts.get(contact_id)
        if contact is None:
            raise not_found("contact", contact_id)
        return json_copy(contact)

    def all(self) -> list[dict[str, Any]]:
        """Every contact, wire-shaped, oldest first."""
        return [json_copy(c) for c in self.contacts.values()]

    def create(self, info: Any, *, allow_duplicates: bool = False) -> dict[str, Any]:
        """Create a contact; 409 DUPLICATE_CONTACT_EXISTS on a used email (or, without, phone)."""
        return json_copy(self.add(info, allow_duplicates=allow_duplicates))

    def add(self, info: Any, *, allow_duplicates: bool = False) -> dict[str, Any]:
        """`create`, returning the stored contact itself (not to be changed)."""
        if not isinstance(info, dict):
            raise invalid("info", "is required", "REQUIRED_FIELD")
        emails = self._emails(info)
        phones = self._phones(info)
        name = info.get("name") or {}
        if not emails and not phones and not (name.get("first") or name.get("last")):
            raise invalid("info", "needs a name, an email or a phone", "REQUIRED_FIELD")
        if not allow_duplicates:
            self._refuse_duplicate(emails, phones)
        now = iso(self._clock())
        contact_info = {k: json_copy(v) for k, v in info.items() if k not in ("emails", "phones")}
        contact_info["emails"] = {"items": emails}
        contact_info["phones"] = {"items": phones}
        primary_email = next((e for e in emails if e["primary"]), None)
        primary_phone = next((p for p in phones if p["primary"]), None)
        contact: dict[str, Any] = {
            "id": self._new_id(),
            "revision": 1,
            "source": {"sourceType": "OTHER"},
            "createdDate": now,
            "updatedDate": now,
            "lastActivity": {"activityDate": now, "activityType": "CONTACT_CREATED"},
            "primaryInfo": {},
            "info": contact_info,
        }
        if primary_email:
            contact["primaryInfo"]["email"] = primary_email["email"]
            contact["primaryEmail"] = {
                "email": primary_email["email"],
                "subscriptionStatus": "NOT_SET",
                "deliverabilityStatus": "NOT_SET",
            }
        if primary_phone:
            contact["primaryInfo"]["phone"] = primary_phone["phone"]
            contact["primaryPhone"] = {
                key: primary_phone[key]
                for key in ("countryCode", "e164Phone", "phone")
                if primary_phone.get(key) is not None
            } | {"subscriptionStatus": "NOT_SET", "deliverabilityStatus": "NOT_SET"}
        self.contacts[contact["id"]] = contact
        self.order.add(contact)
        for key in dict.fromkeys(_email_key(item["email"]) for item in emails):
            self._with_email.add(key, contact["id"])
        for item in phones:
            self._phone_owners.setdefault(_phone_key(item), contact["id"])
        return contact

    def with_email(self, email: str) -> list[dict[str, Any]]:
        """The stored contacts with this email (any case), oldest first."""
        return [self.contacts[i] for i in self._with_email.get(_email_key(email))]

    def _refuse_duplicate(self, emails: list[dict[str, Any]], phones: list[dict[str, Any]]) -> None:
        """409 naming the oldest contact with one of the emails (or, without any, phones)."""
        if emails:
            wanted = {_email_key(e["email"]) for e in emails}
            contact = self._oldest(
                found[0] for key in wanted if (found := self._with_email.get(key))
            )
            if contact is not None:
                item = next(
                    i
                    for i in contact["info"]["emails"]["items"]
                    if _email_key(i["email"]) in wanted
                )
                raise _duplicate(contact["id"], duplicateEmail=item["email"])
            return
        wanted_phones = {_phone_key(p) for p in phones}
        owners = self._phone_owners
        contact = self._oldest(owners[key] for key in wanted_phones if key in owners)
        if contact is not None:
            item = next(
                i for i in contact["info"]["phones"]["items"] if _phone_key(i) in wanted_phones
            )
            raise _duplicate(contact["id"], duplicatePhone=item["phone"])

    def _oldest(self, contact_ids: Iterable[str]) -> dict[str, Any] | None:
        """The oldest of these contacts (None when there are none)."""
        owners = set(contact_ids)
        if len(owners) > 1:
            return next(c for c in self.contacts.values() if c["id"] in owners)
        return self.contacts[owners.pop()] if owners else None

    def _emails(self, info: dict[str, Any]) -> list[dict[str, Any]]:
        items = (info.get("emails") or {}).get("items") or []
        result = []
        for index, item in enumerate(items):
            email = item.get("email") if isinstance(item, dict) else None
            if not isinstance(email, str) or "@" not in email:
                raise invalid(f"info.emails.items[{index}].email", "must be an email", "FORMAT")
            result.append(
                {
                    "id": self._new_id(),
                    "tag": item.get("tag") or "UNTAGGED",
                    "email": email,
                    "primary": bool(item.get("primary")),
                }
            )
        _mark_primary(result)
        return result

    def _phones(self, info: dict[str, Any]) -> list[dict[str, Any]]:
        items = (info.get("phones") or {}).get("items") or []
        result = []
        for index, item in enumerate(items):
            phone = item.get("phone") if isinstance(item, dict) else None
            if not isinstance(phone, str) or not 1 <= len(phone) <= 50:
                raise invalid(f"info.phones.items[{index}].phone", "must be 1..50 characters")
            country = item.get("countryCode")
            entry: dict[str, Any] = {
                "id": self._new_id(),
                "tag": item.get("tag") or "UNTAGGED",
                "phone": phone,
                "primary": bool(item.get("primary")),
            }
            if country:
                entry["countryCode"] = str(country).upper()
            generated = e164(phone, country)
            if generated:
                entry["e164Phone"] = generated
            result.append(entry)
        _mark_primary(result)
        return result


def _mark_primary(items: list[dict[str, Any]]) -> None:
    """Exactly one primary item: the first one marked, else the first one."""
    chosen = next((i for i, item in enumerate(items) if item["primary"]), 0)
    for index, item in enumerate(items):
        item["primary"] = index == chosen


def _as_stored(contact: dict[str, Any]) -> dict[str, Any]:
    return contact


def _contact_key(contact: dict[str, Any]) -> Key:
    return contact["createdDate"], contact["id"]


def _email_key(email: str) -> str:
    return email if email.islower() else email.lower()  # keeps the stored string when it can


def _phone_key(item: dict[str, Any]) -> str:
    return str(item.get("e164Phone") or re.sub(r"\D", "", str(item.get("phone", ""))))


def _duplicate(contact_id: str, **data: str) -> WixApiError:
    return WixApiError(
        409,
        "Contact with the same email or phone already exists",
        code="DUPLICATE_CONTACT_EXISTS",
        data={"duplicateContactId": contact_id, **data},
    )
