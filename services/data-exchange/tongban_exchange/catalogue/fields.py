"""What a dataset's JSON Schema says about its fields: which exist, which are personal."""

from __future__ import annotations

from typing import Any

#: The schema keyword that marks a personal identifier.
PERSONAL = "x-tongban-personal"


def top_level_fields(schema: dict[str, Any]) -> list[str]:
    """The fields a grant can name: the schema's top-level properties."""
    return sorted(schema.get("properties", {}))


def personal_paths(schema: dict[str, Any], prefix: str = "") -> list[str]:
    """JSON-pointer paths of the personal fields, ``*`` standing for every item of an array:
    ``/legal_representative/resident_id``, ``/investors/*/name``."""
    paths: list[str] = []
    children = [(f"{prefix}/{name}", sub) for name, sub in schema.get("properties", {}).items()]
    if isinstance(schema.get("items"), dict):
        children.append((f"{prefix}/*", schema["items"]))
    for path, sub in children:
        if not isinstance(sub, dict):
            continue
        if sub.get(PERSONAL) is True:
            paths.append(path)
        paths += personal_paths(sub, path)
    return paths
