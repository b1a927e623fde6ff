"""A grant's view of a record: only its fields, personal identifiers pseudonymised."""

from __future__ import annotations

import copy
from typing import Any

from tongban_exchange.models import Grant
from tongban_exchange.routing.pseudonyms import PseudonymSource


async def project(
    data: dict[str, Any],
    *,
    grant: Grant,
    personal: list[str],
    pseudonyms: PseudonymSource,
) -> dict[str, Any]:
    """The granted top-level fields of ``data``; each personal value in them is replaced by
    the department's pseudonym (or left out if none can be made) unless the grant allows it.
    ``personal`` holds JSON-pointer paths, ``*`` for every item of an array."""
    view = {name: data[name] for name in grant.fields if name in data}
    if grant.personal_allowed:
        return view
    paths = [path.strip("/").split("/") for path in personal]
    # Only the fields a personal path runs through are changed: copy those, share the rest.
    for name in {parts[0] for parts in paths if parts[0] in view}:
        view[name] = copy.deepcopy(view[name])
    for parts in paths:
        await _replace(view, parts, grant.department, pseudonyms)
    return view


async def _replace(
    node: Any, parts: list[str], department: str, pseudonyms: PseudonymSource
) -> None:
    part, rest = parts[0], parts[1:]
    if part == "*":
        children: list[tuple[Any, Any]] = list(enumerate(node)) if isinstance(node, list) else []
    elif isinstance(node, dict) and part in node:
        children = [(part, node[part])]
    else:
        return
    for key, child in children:
        if rest:
            await _replace(child, rest, department, pseudonyms)
        elif isinstance(child, str):
            pseudonym = await pseudonyms.pseudonym(department, child)
            if pseudonym is not None:
                node[key] = pseudonym
            elif isinstance(node, dict):
                del node[key]
            else:
                node[key] = None  # an array keeps its length; the value is withheld
