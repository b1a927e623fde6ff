"""An in-process copy of the department clients the token endpoint has seen.

Each entry carries its row's version (PostgreSQL's ``xmin``: every update writes a new row
version with the updating transaction's id). The statement that records a used assertion
(``repository.consume_assertion``) also reads the row's current version and records nothing
unless it still matches the copy the assertion was checked with; on a mismatch the grant
reloads the row and checks again. So a client disabled, given new keys or new scopes — by the
CLI, the admin API or another replica — is judged by its new row at its very next request,
and the copy costs no query of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.departments import repository
from tongban_identity.departments.client_keys import ClientKey, find_key

__all__ = ["ClientDirectory", "ClientEntry"]

#: More clients than that on one node would be surprising; beyond it the oldest are dropped.
MAX_ENTRIES = 2048


@dataclass
class ClientEntry:
    """One client row as of ``version``, with its public keys loaded on first use."""

    client_id: str
    code: str
    name: str
    scopes: tuple[str, ...]
    jwks: dict[str, object]
    disabled_at: datetime | None
    version: str
    _keys: dict[str, ClientKey | None] = field(default_factory=dict, repr=False)

    def key(self, kid: str) -> ClientKey | None:
        if kid not in self._keys:
            self._keys[kid] = find_key(self.jwks, kid)
        return self._keys[kid]


class ClientDirectory:
    """Client rows by client id, for one process (``app.state.client_directory``)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: dict[str, ClientEntry] = {}
        self._max = max_entries

    def cached(self, client_id: str) -> ClientEntry | None:
        return self._entries.get(client_id)

    async def load(self, session: AsyncSession, client_id: str) -> ClientEntry | None:
        """The client's row as it is now (None if there is none), kept for the next request."""
        row = await repository.get_versioned(session, client_id)
        if row is None:
            self._entries.pop(client_id, None)
            return None
        entry = ClientEntry(
            client_id=row.client_id,
            code=row.code,
            name=row.name,
            scopes=tuple(row.scopes),
            jwks=dict(row.jwks),
            disabled_at=row.disabled_at,
            version=row.version,
        )
        if len(self._entries) >= self._max:
            self._entries.pop(next(iter(self._entries)))
        self._entries[client_id] = entry
        return entry

    async def get(self, session: AsyncSession, client_id: str) -> ClientEntry | None:
        """The cached copy, or the row loaded now; the caller checks the version when it
        records the assertion."""
        return self.cached(client_id) or await self.load(session, client_id)
