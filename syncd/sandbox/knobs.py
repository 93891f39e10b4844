"""Read and patch an emulator's knobs (nested dataclasses) as JSON, with type checks.

`dump(knobs)` gives a JSON-ready dict (random generators left out); `patch(knobs, changes)`
applies a partial dict in place, descending into nested dataclasses (`{"faults": {...}}`),
and raises `KnobError` naming the first bad key or value without changing anything.
"""

from __future__ import annotations

import copy
import dataclasses
import random
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints


class KnobError(ValueError):
    """A knob patch names an unknown knob or gives a value of the wrong type."""


def dump(knobs: Any) -> dict[str, Any]:
    """The knobs as a JSON-ready dict; nested dataclasses become nested dicts."""
    result: dict[str, Any] = {}
    for f in dataclasses.fields(knobs):
        value = getattr(knobs, f.name)
        if isinstance(value, random.Random):
            continue
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            result[f.name] = dump(value)
        elif isinstance(value, tuple):
            result[f.name] = list(value)
        else:
            result[f.name] = value
    return result


def patch(knobs: Any, changes: dict[str, Any]) -> None:
    """Apply `changes` to `knobs` in place, all or nothing."""
    trial = copy.deepcopy(knobs)
    _apply(trial, changes, prefix="")
    _apply(knobs, changes, prefix="")


def _apply(knobs: Any, changes: dict[str, Any], prefix: str) -> None:
    if not isinstance(changes, dict):
        raise KnobError(f"{prefix or 'knobs'}: expected an object")
    hints = get_type_hints(type(knobs))
    names = {f.name for f in dataclasses.fields(knobs)}
    for name, value in changes.items():
        path = f"{prefix}{name}"
        if name not in names or name == "rng":
            raise KnobError(f"{path}: no such knob")
        current = getattr(knobs, name)
        if dataclasses.is_dataclass(current) and not isinstance(current, type):
            _apply(current, value, prefix=f"{path}.")
            continue
        setattr(knobs, name, _coerce(hints[name], value, path))


def _coerce(hint: Any, value: Any, path: str) -> Any:
    """Check `value` against a type hint; lists become tuples where the hint says tuple."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        for option in get_args(hint):
            try:
                return _coerce(option, value, path)
            except KnobError:
                continue
        raise KnobError(f"{path}: {value!r} is not one of {hint}")
    if origin is Literal:
        if value in get_args(hint):
            return value
        raise KnobError(f"{path}: {value!r} is not one of {get_args(hint)}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise KnobError(f"{path}: expected a list")
        (item_hint, *_rest) = get_args(hint)
        return tuple(_coerce(item_hint, item, path) for item in value)
    if hint is type(None):
        if value is None:
            return None
        raise KnobError(f"{path}: expected null")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise KnobError(f"{path}: expected true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise KnobError(f"{path}: expected an integer")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise KnobError(f"{path}: expected a number")
    if hint is str:
        if isinstance(value, str):
            return value
        raise KnobError(f"{path}: expected a string")
    raise KnobError(f"{path}: cannot set a knob of type {typing.get_origin(hint) or hint}")
