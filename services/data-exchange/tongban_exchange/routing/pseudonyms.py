"""Personal identifiers become the department's pairwise pseudonym, made by identity."""

from __future__ import annotations

import hashlib
from typing import Protocol

import httpx

from tongban_exchange.runtime import Exchange

PAIRWISE_PATH = "/v1/pairwise/subjects"
PAIRWISE_SCOPE = "identity:pairwise:derive"


class IdentityUnavailable(ConnectionError):
    """Identity could not answer; the event is retried, never delivered unpseudonymised."""


class PseudonymSource(Protocol):
    async def pseudonym(self, department: str, resident_id: str) -> str | None:
        """The department's pseudonym for a person, or None if none can be made (the field
        is then withheld)."""


class IdentityPseudonyms:
    """Asks identity, as this service's OAuth client; remembers answers (they never change)."""

    def __init__(self, exchange: Exchange, *, cache_size: int = 50_000) -> None:
        self.exchange = exchange
        self.cache: dict[tuple[str, str], str] = {}
        self.cache_size = cache_size

    async def pseudonym(self, department: str, resident_id: str) -> str | None:
        key = (department, hashlib.sha256(resident_id.encode()).hexdigest())
        if key in self.cache:
            return self.cache[key]
        headers = await self.exchange.identity_headers()
        http = self.exchange.http
        if headers is None or http is None:
            return None  # not enrolled at identity: withhold rather than disclose
        url = self.exchange.identity_url() + PAIRWISE_PATH
        try:
            response = await http.post(
                url, json={"department": department, "resident_id": resident_id}, headers=headers
            )
        except httpx.HTTPError as exc:
            raise IdentityUnavailable(f"identity: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code in (401, 403, 429):
            raise IdentityUnavailable(f"identity answered {response.status_code}")
        if response.status_code != 200:
            return None  # e.g. a department identity does not know: withhold
        pseudonym = str(response.json()["pseudonym"])
        if len(self.cache) >= self.cache_size:
            self.cache.clear()
        self.cache[key] = pseudonym
        return pseudonym
