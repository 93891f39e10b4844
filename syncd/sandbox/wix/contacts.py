"""The site's Contacts (v4) as the emulator keeps them: creation, duplicates, phones, wire shape."""

from __future__ import annotations

import copy
import re
from typing import Any

from syncd.sandbox.wix.errors import WixApiError, invalid, not_found
from syncd.sandbox.wix.wire import Clock, IdFactory, iso

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

    def get(self, contact_id: str) -> dict[str, Any]:
        """The contact as the API returns it; 404 when unknown."""
        contact = self.contacts.get(contact_id)
        if contact is None:
            raise not_found("contact", contact_id)
        return copy.deepcopy(contact)

    def all(self) -> list[dict[str, Any]]:
        """Every contact, wire-shaped, oldest first."""
        return [copy.deepcopy(c) for c in self.contacts.values()]

    def create(self, info: Any, *, allow_duplicates: bool = False) -> dict[str, Any]:
        """Create a contact; 409 DUPLICATE_CONTACT_EXISTS on a used email (or, without, phone)."""
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
        contact_info = {
            k: copy.deepcopy(v) for k, v in info.items() if k not in ("emails", "phones")
        }
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
        return copy.deepcopy(contact)

    def _refuse_duplicate(self, emails: list[dict[str, Any]], phones: list[dict[str, Any]]) -> None:
        if emails:
            wanted = {e["email"].lower() for e in emails}
            for contact in self.contacts.values():
                for item in contact["info"]["emails"]["items"]:
                    if item["email"].lower() in wanted:
                        raise _duplicate(contact["id"], duplicateEmail=item["email"])
            return
        wanted_phones = {_phone_key(p) for p in phones}
        for contact in self.contacts.values():
            for item in contact["info"]["phones"]["items"]:
                if _phone_key(item) in wanted_phones:
                    raise _duplicate(contact["id"], duplicatePhone=item["phone"])

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


def _phone_key(item: dict[str, Any]) -> str:
    return str(item.get("e164Phone") or re.sub(r"\D", "", str(item.get("phone", ""))))


def _duplicate(contact_id: str, **data: str) -> WixApiError:
    return WixApiError(
        409,
        "Contact with the same email or phone already exists",
        code="DUPLICATE_CONTACT_EXISTS",
        data={"duplicateContactId": contact_id, **data},
    )
