"""The contact batch endpoints: read, update, upsert (at most 100 inputs each).

    POST /crm/v3/objects/contacts/batch/read    {"inputs": [{"id"}], "idProperty"?,
                                                 "properties", "propertiesWithHistory"}
    POST /crm/v3/objects/contacts/batch/update  {"inputs": [{"id", "idProperty"?,
                                                 "properties"}]}
    POST /crm/v3/objects/contacts/batch/upsert  {"inputs": [{"id", "idProperty", "properties"}]}

Each answers `{"status": "COMPLETE", "results", "startedAt", "completedAt"}` with 200 when
every input went through, or 207 with `"numErrors"` and `"errors"` (the SDK's StandardError)
beside the results when some did not: ids that match no contact (one OBJECT_NOT_FOUND error
listing them in `context.ids`), or a write refused for one input (its own error). A value
that fails validation refuses the whole batch (400), as does the same id twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.hubspot.emulator.contacts import Contact
from connectors.hubspot.emulator.errors import HubSpotApiError, validation_error
from connectors.hubspot.emulator.properties import coerce
from connectors.hubspot.emulator.state import ContactState
from connectors.hubspot.emulator.wire import Json, inputs, names, text, utc_millis

Answer = tuple[int, Json]


def batch_read(state: ContactState, body: Json, *, archived: bool) -> Answer:
    """Read contacts by id or by `idProperty`; missing ones are errors, not failures."""
    started = state.clock()
    id_property = body.get("idProperty")
    shown = names(body.get("properties"), "properties")
    history = names(body.get("propertiesWithHistory"), "propertiesWithHistory")
    known = set(state.properties.defined)
    results: dict[str, Json] = {}
    missing: list[str] = []
    with state.lock:
        for item in inputs(body):
            key = text(item.get("id"), "inputs[].id")
            contact = _found(state, key, id_property, archived=archived)
            if contact is None:
                missing.append(key)
            else:
                results.setdefault(contact.id, contact.wire(shown, history, known=known))
    errors = [_not_found("get", missing)] if missing else []
    return _answer(started, state, list(results.values()), errors)


def batch_update(state: ContactState, body: Json) -> Answer:
    """Write each input's properties; unknown ids and refused writes are reported apart."""
    started = state.clock()
    items = inputs(body)
    writes = [
        (
            text(item.get("id"), "inputs[].id"),
            item.get("idProperty"),
            state.properties.normalize(item.get("properties")),
        )
        for item in items
    ]
    _no_repeats([key for key, _p, _v in writes])
    results: list[Json] = []
    errors: list[Json] = []
    missing: list[str] = []
    known = set(state.properties.defined)
    with state.lock:
        for key, id_property, values in writes:
            contact = _found(state, key, id_property)
            if contact is None:
                missing.append(key)
                continue
            try:
                state.update(contact, values, state.api)
            except HubSpotApiError as error:
                errors.append(_standard(error, {"ids": [key]}))
                continue
            results.append(contact.wire(list(values), known=known))
    if missing:
        errors.insert(0, _not_found("update", missing))
    return _answer(started, state, results, errors)


def batch_upsert(state: ContactState, body: Json) -> Answer:
    """Update the contact each input's unique value names, or create it with that value."""
    started = state.clock()
    items = inputs(body)
    writes = []
    for item in items:
        key, id_property = _upsert_key(state, item)
        values = state.properties.normalize(item.get("properties"))
        writes.append((key, id_property, values))
    _no_repeats([f"{p}:{k}" for k, p, _v in writes])
    results: list[Json] = []
    errors: list[Json] = []
    known = set(state.properties.defined)
    with state.lock:
        for key, id_property, values in writes:
            contact = _found(state, key, id_property)
            try:
                if contact is None:
                    created = state.create({**values, id_property: key}, state.api)
                    results.append(_upserted(created, [*values, id_property], known, new=True))
                else:
                    state.update(contact, values, state.api)
                    results.append(_upserted(contact, list(values), known, new=False))
            except HubSpotApiError as error:
                errors.append(_standard(error, {"ids": [key]}))
    return _answer(started, state, results, errors)


def _upsert_key(state: ContactState, item: Json) -> tuple[str, str]:
    """An upsert input's unique value (normalized) and the property it belongs to."""
    key = text(item.get("id"), "inputs[].id")
    id_property = item.get("idProperty")
    prop = state.properties.defined.get(id_property) if isinstance(id_property, str) else None
    if prop is None or not (prop.name == "email" or prop.has_unique_value):
        raise validation_error(
            f"Upsert needs `idProperty` naming a unique property (email or one with "
            f"hasUniqueValue), got {id_property!r}."
        )
    try:
        value = coerce(prop, key)
    except ValueError as exc:
        raise validation_error(f"Invalid upsert id {key!r}: {exc.args[-1]}") from None
    return value or key, prop.name


def _upserted(contact: Contact, shown: list[str], known: set[str], *, new: bool) -> Json:
    return contact.wire(shown, known=known) | {"new": new}


def _found(
    state: ContactState, key: str, id_property: Any, *, archived: bool = False
) -> Contact | None:
    """The contact `key` names, or None where a lookup would answer 404."""
    try:
        return state.find(key, id_property, archived=archived)
    except HubSpotApiError as error:
        if error.status == 404:
            return None
        raise


def _no_repeats(keys: list[str]) -> None:
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise validation_error(
            f"Duplicate IDs found in batch input: {repeated}. IDs must be unique"
        )


def _not_found(verb: str, ids: list[str]) -> Json:
    return _standard(
        HubSpotApiError(
            404,
            "OBJECT_NOT_FOUND",
            f"Could not {verb} some CONTACT objects, they may be deleted or not exist. "
            "Check that ids are valid.",
        ),
        {"ids": ids},
    )


def _standard(error: HubSpotApiError, context: dict[str, list[str]]) -> Json:
    """One entry of a 207's `errors` (the SDK's StandardError)."""
    entry: dict[str, Any] = {
        "status": "error",
        "category": error.category,
        "message": error.message,
        "context": error.context or context,
        "links": {},
        "errors": error.errors or [],
    }
    return entry


def _answer(
    started: datetime, state: ContactState, results: list[Json], errors: list[Json]
) -> Answer:
    body: Json = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": utc_millis(started),
        "completedAt": utc_millis(state.clock()),
    }
    if not errors:
        return 200, body
    return 207, body | {"numErrors": len(errors), "errors": errors}
