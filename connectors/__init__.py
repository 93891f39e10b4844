"""Connectors to the systems syncd keeps in step with Wix, one package per system.

Connector types are found through the entry-point group `syncd.connectors` (name = the
`type` in config, value = the Connector class), so a third party can ship one as a package.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from pydantic import ValidationError

from connectors.base import Connector
from syncd.errors import ConfigError
from syncd.settings import ConnectorSettings, Settings, describe_error

GROUP = "syncd.connectors"


def connector_types() -> dict[str, type[Connector]]:
    """Every installed connector type by name."""
    found: dict[str, type[Connector]] = {}
    for entry in entry_points(group=GROUP):
        found[entry.name] = entry.load()
    return found


def typed_settings(settings: Settings) -> list[ConnectorSettings]:
    """Each `[[connectors]]` table checked by its type's own model; ConfigError lists all faults."""
    types = connector_types()
    problems: list[str] = []
    typed: list[ConnectorSettings] = []
    for index, table in enumerate(settings.connectors):
        where = f"connectors[{index}]"
        kind = types.get(table.type)
        if kind is None:
            known = ", ".join(sorted(types)) or "none installed"
            problems.append(f"{where}.type: unknown connector type {table.type!r}; known: {known}")
            continue
        try:
            typed.append(kind.settings_model.model_validate(table.model_dump()))
        except ValidationError as exc:
            problems += [
                describe_error({**err, "loc": ("connectors", index, *err["loc"])})
                for err in exc.errors()
            ]
    if problems:
        raise ConfigError(problems)
    return typed


def create(settings: ConnectorSettings) -> Connector:
    """A connector for one typed `[[connectors]]` table (see `typed_settings`)."""
    return connector_types()[settings.type](settings)
