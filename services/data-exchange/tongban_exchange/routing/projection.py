"""A grant's view of a record: only its fields, personal identifiers pseudonymised."""

from __future__ import annotations

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
    view: dict[str, Any] = {name: data[name] for name in grant.fields if name in data}
    if grant.personal_allowed:
        return view
    for path in personal:
        view = await _replaced(view, path.strip("/").split("/"), grant.department, pseudonyms)
    return view


_DROP = object()  # a personal value no pseudonym could be made for


async def _replaced(
    node: Any, parts: list[str], department: str, pseudonyms: PseudonymSource
) -> Any:
    """``node`` with the personal values at ``parts`` replaced: the containers on the way are
    copied, everything else is shared with the event (which stays as it was)."""
    part, rest = parts[0], parts[1:]
    if part == "*":
        if not isinstance(node, list):
            return node
        items = [await _child(item, rest, department, pseudonyms) for item in node]
        return [None if item is _DROP else item for item in items]  # an array keeps its length
    if not isinstance(node, dict) or part not in node:
        return node
    child = await _child(node[part], rest, department, pseudonyms)
    copy = dict(node)
    if child is _DROP:
        del copy[part]
    else:
        copy[part] = child
    return copy


async def _child(node: Any, rest: list[str], department: str, pseudonyms: PseudonymSource) -> Any:
    if rest:
        return await _replaced(node, rest, department, pseudonyms)
    if isinstance(node, str):
        pseudonym = await pseudonyms.pseudonym(department, node)
        return _DROP if pseudonym is None else pseudonym
    return node
