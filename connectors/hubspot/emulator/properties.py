"""Contact property definitions and the values written to them.

Every contact value is kept as HubSpot sends it: a string. `PropertyBook.normalize` turns a
PATCH's `{"properties": {...}}` into those strings, refusing the whole write (400
VALIDATION_ERROR) if any name is unknown (PROPERTY_DOESNT_EXIST), any value does not fit its
type (INVALID_DECIMAL, INVALID_EMAIL, INVALID_DATETIME) or a read-only property is written
(READ_ONLY_VALUE). An empty string clears a value.

Standard properties from the start: email, firstname, lastname, phone, createdate,
lastmodifieddate, hs_object_id, hs_merged_object_ids.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.hubspot.emulator.errors import conflict, detail, not_found, validation_error
from connectors.hubspot.emulator.wire import Json, parse_moment, utc_millis

TYPES = {"string", "number", "date", "datetime", "enumeration", "bool"}
FIELD_TYPES = {
    "textarea",
    "text",
    "date",
    "file",
    "number",
    "select",
    "radio",
    "checkbox",
    "booleancheckbox",
    "calculation_equation",
    "phonenumber",
}
NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_TEXT = 65_536
GROUP = "contactinformation"


@dataclass
class PropertyDef:
    """One contact property, as GET /crm/v3/properties/contacts/{name} shows it."""

    name: str
    label: str
    type: str
    field_type: str
    created_at: datetime
    group_name: str = GROUP
    description: str = ""
    has_unique_value: bool = False
    hubspot_defined: bool = False
    read_only: bool = False
    display_order: int = -1
    options: list[Json] = field(default_factory=list)

    def wire(self) -> Json:
        """The property in HubSpot's shape (the SDK's ModelProperty)."""
        shown: Json = {
            "updatedAt": utc_millis(self.created_at),
            "createdAt": utc_millis(self.created_at),
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group_name,
            "options": self.options,
            "displayOrder": self.display_order,
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": self.has_unique_value,
            "hidden": False,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
            "formField": not self.read_only,
            "archived": False,
        }
        if self.hubspot_defined:
            shown["hubspotDefined"] = True
        return shown


def standard_properties(at: datetime) -> list[PropertyDef]:
    """The HubSpot-defined contact properties the emulator knows."""

    def std(name: str, label: str, kind: str, field_type: str, **extra: Any) -> PropertyDef:
        return PropertyDef(name, label, kind, field_type, at, hubspot_defined=True, **extra)

    return [
        std("email", "Email", "string", "text"),
        std("firstname", "First Name", "string", "text"),
        std("lastname", "Last Name", "string", "text"),
        std("phone", "Phone Number", "string", "phonenumber"),
        std("createdate", "Create Date", "datetime", "date", read_only=True),
        std("lastmodifieddate", "Last Modified Date", "datetime", "date", read_only=True),
        std("hs_object_id", "Record ID", "number", "number", read_only=True),
        std(
            "hs_merged_object_ids",
            "Merged Record IDs",
            "enumeration",
            "checkbox",
            read_only=True,
        ),
    ]


class PropertyBook:
    """The portal's contact properties, by name."""

    def __init__(self, at: datetime) -> None:
        self.defined: dict[str, PropertyDef] = {p.name: p for p in standard_properties(at)}

    def get(self, name: str) -> PropertyDef:
        """The property `name`; 404 OBJECT_NOT_FOUND otherwise."""
        found = self.defined.get(name)
        if found is None:
            raise not_found(f"Unable to find property with name {name}")
        return found

    def define(self, prop: PropertyDef) -> PropertyDef:
        """Add a property; 409 CONFLICT if the name is taken."""
        if prop.name in self.defined:
            raise conflict(f"Property named '{prop.name}' already exists.")
        self.defined[prop.name] = prop
        return prop

    def create(self, body: Json, at: datetime) -> PropertyDef:
        """A property from a POST /crm/v3/properties/contacts body (the SDK's PropertyCreate)."""
        problems = [
            f"`{key}` is required"
            for key in ("name", "label", "type", "fieldType", "groupName")
            if not isinstance(body.get(key), str) or not body.get(key)
        ]
        name, kind, field_type = body.get("name"), body.get("type"), body.get("fieldType")
        if isinstance(name, str) and name and not NAME.match(name):
            problems.append(f"name '{name}' must be lowercase letters, digits and underscores")
        if isinstance(kind, str) and kind and kind not in TYPES:
            problems.append(f"type '{kind}' is not one of {sorted(TYPES)}")
        if isinstance(field_type, str) and field_type and field_type not in FIELD_TYPES:
            problems.append(f"fieldType '{field_type}' is not one of {sorted(FIELD_TYPES)}")
        unique = body.get("hasUniqueValue", False)
        if not isinstance(unique, bool):
            problems.append("`hasUniqueValue` must be a boolean")
        if problems:
            raise validation_error("Invalid input JSON: " + "; ".join(problems) + ".")
        return self.define(
            PropertyDef(
                name=str(name),
                label=str(body["label"]),
                type=str(kind),
                field_type=str(field_type),
                created_at=at,
                group_name=str(body["groupName"]),
                description=str(body.get("description") or ""),
                has_unique_value=unique,
                display_order=order if isinstance(order := body.get("displayOrder"), int) else -1,
            )
        )

    def normalize(self, values: Any) -> dict[str, str | None]:
        """The values of a write as stored strings (None clears); 400 VALIDATION_ERROR
        naming every bad one otherwise."""
        if not isinstance(values, dict):
            raise validation_error("Invalid input JSON: `properties` must be an object.")
        stored: dict[str, str | None] = {}
        problems: list[tuple[str, str, str]] = []  # (name, code, message)
        for name, value in values.items():
            prop = self.defined.get(name)
            if prop is None:
                problems.append(
                    (name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
                continue
            if prop.read_only:
                problems.append((name, "READ_ONLY_VALUE", f'Property "{name}" is read-only'))
                continue
            try:
                stored[name] = coerce(prop, value)
            except ValueError as exc:
                problems.append((name, *exc.args))
        if problems:
            raise invalid_values(problems)
        return stored


def invalid_values(problems: list[tuple[str, str, str]]) -> Exception:
    """400 VALIDATION_ERROR in HubSpot's two forms at once: a message holding the JSON list
    of failed checks, and `errors` with one code per property."""
    checks = [
        {"isValid": False, "message": message, "error": code, "name": name}
        for name, code, message in problems
    ]
    return validation_error(
        f"Property values were not valid: {json.dumps(checks)}",
        [detail(message, code, propertyName=[name]) for name, code, message in problems],
    )


def coerce(prop: PropertyDef, value: Any) -> str | None:
    """One written value as the stored string; ValueError((code, message)) if it does not fit."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float | str):
        text = str(value)
    else:
        raise ValueError("INVALID_VALUE", f"{value!r} is not a valid value for {prop.name}")
    if prop.type == "number":
        return _number(text, prop.name)
    if prop.type in ("datetime", "date"):
        moment = parse_moment(text)
        if moment is None:
            raise ValueError("INVALID_DATETIME", f"{text} is not a valid datetime for {prop.name}")
        return utc_millis(moment)
    if prop.type == "bool" and text.lower() not in ("true", "false"):
        raise ValueError("INVALID_BOOLEAN", f"{text} is not a valid boolean for {prop.name}")
    if prop.name == "email":
        if not EMAIL.match(text):
            raise ValueError("INVALID_EMAIL", f"Email address {text} is invalid")
        return text.lower()
    if len(text) > MAX_TEXT:
        raise ValueError("INVALID_LENGTH", f"{prop.name} is longer than {MAX_TEXT} characters")
    return text


def _number(text: str, name: str) -> str:
    """A decimal as HubSpot shows it: integral values without a fraction."""
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise ValueError("INVALID_DECIMAL", f"{text} was not a valid number for {name}")
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")
