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
    """The granted top-level fields of ``data``; each personal path in them is replaced by the
    department's pseudonym (or left out if none can be made) unless the grant allows it."""
    view = {name: copy.deepcopy(data[name]) for name in grant.fields if name in data}
    if grant.personal_allowed:
        return view
    for path in personal:
        *parents, leaf = path.strip("/").split("/")
        holder: Any = view
        for part in parents:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if not isinstance(holder, dict) or not isinstance(holder.get(leaf), str):
            continue
        pseudonym = await pseudonyms.pseudonym(grant.department, holder[leaf])
        if pseudonym is None:
            del holder[leaf]
        else:
            holder[leaf] = pseudonym
    return view
