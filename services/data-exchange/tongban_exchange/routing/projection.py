"""A grant's view of a record: only its fields, personal identifiers pseudonymised."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
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
    view = _granted(data, grant)
    if grant.personal_allowed:
        return view
    named = {
        value: await pseudonyms.pseudonym(grant.department, value)
        for value in dict.fromkeys(personal_values(view, personal))
    }
    for path in personal:
        view = _replaced(view, _parts(path), named)
    return view


def needed_pseudonyms(
    data: dict[str, Any], *, grants: Iterable[Grant], personal: list[str]
) -> set[tuple[str, str]]:
    """The ``(department, value)`` pairs ``project`` will ask a pseudonym for, grant by grant."""
    return {
        (grant.department, value)
        for grant in grants
        if not grant.personal_allowed
        for value in personal_values(_granted(data, grant), personal)
    }


def personal_values(node: Any, personal: list[str]) -> Iterator[str]:
    """The string values at the ``personal`` paths of ``node`` (``*``: every array item)."""
    for path in personal:
        yield from _walk(node, _parts(path))


def _walk(node: Any, parts: Sequence[str]) -> Iterator[str]:
    if not parts:
        if isinstance(node, str):
            yield node
        return
    part, rest = parts[0], parts[1:]
    if part == "*":
        if isinstance(node, list):
            for item in node:
                yield from _walk(item, rest)
    elif isinstance(node, dict) and part in node:
        yield from _walk(node[part], rest)


def _granted(data: dict[str, Any], grant: Grant) -> dict[str, Any]:
    return {name: data[name] for name in grant.fields if name in data}


@functools.cache
def _parts(path: str) -> tuple[str, ...]:
    return tuple(path.strip("/").split("/"))


_DROP = object()  # a personal value no pseudonym could be made for


def _replaced(node: Any, parts: Sequence[str], named: dict[str, str | None]) -> Any:
    """``node`` with the personal values at ``parts`` replaced by ``named``: the containers on
    the way are copied, everything else is shared with the event (which stays as it was)."""
    part, rest = parts[0], parts[1:]
    if part == "*":
        if not isinstance(node, list):
            return node
        items = [_child(item, rest, named) for item in node]
        return [None if item is _DROP else item for item in items]  # an array keeps its length
    if not isinstance(node, dict) or part not in node:
        return node
    child = _child(node[part], rest, named)
    copy = dict(node)
    if child is _DROP:
        del copy[part]
    else:
        copy[part] = child
    return copy


def _child(node: Any, rest: Sequence[str], named: dict[str, str | None]) -> Any:
    if rest:
        return _replaced(node, rest, named)
    if isinstance(node, str) and node in named:  # not: a pseudonym an earlier path made
        pseudonym = named[node]
        return _DROP if pseudonym is None else pseudonym
    return node
