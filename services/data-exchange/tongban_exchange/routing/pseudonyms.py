"""Personal identifiers become the department's pairwise pseudonym, made by identity."""

from __future__ import annotations

import hashlib
import time
from typing import Protocol

import httpx

from tongban_exchange.runtime import Exchange
from tongban_kit.identifiers import InvalidIdentifier, validate_resident_id

PAIRWISE_PATH = "/v1/pairwise/subjects"
PAIRWISE_BATCH_PATH = "/v1/pairwise/subjects/batch"
PAIRWISE_SCOPE = "identity:pairwise:derive"
#: The most pairs identity's batch endpoint takes at once.
BATCH_SIZE = 500
#: How long a pair identity made no pseudonym for is withheld without asking again: long
#: enough for the batch that asked, short enough that a department enrolled later soon gets
#: its pseudonyms.
WITHHELD_SECONDS = 60.0


class IdentityUnavailable(ConnectionError):
    """Identity could not answer; the event is retried, never delivered unpseudonymised."""


class PseudonymSource(Protocol):
    async def pseudonym(self, department: str, resident_id: str) -> str | None:
        """The department's pseudonym for a person, or None if none can be made (the field
        is then withheld)."""

    async def prefetch(self, pairs: set[tuple[str, str]]) -> None:
        """Get ready to answer ``pseudonym`` for each ``(department, resident_id)`` without
        asking anyone one at a time."""


def _key(department: str, resident_id: str) -> tuple[str, str]:
    return department, hashlib.sha256(resident_id.encode()).hexdigest()


def _unavailable(response: httpx.Response) -> bool:
    return response.status_code >= 500 or response.status_code in (401, 403, 429)


class IdentityPseudonyms:
    """Asks identity, as this service's OAuth client; remembers answers (they never change).

    A pair identity made no pseudonym for (its department is not enrolled there, or the value
    is no resident ID number) is remembered as withheld for ``withheld_seconds`` only: the
    department may be enrolled later.
    """

    def __init__(self, exchange: Exchange, *, cache_size: int = 50_000) -> None:
        self.exchange = exchange
        self.cache: dict[tuple[str, str], str] = {}
        self.cache_size = cache_size
        self.withheld: dict[tuple[str, str], float] = {}  # key → since (monotonic)
        self.withheld_seconds = WITHHELD_SECONDS
        self._pruned_at = 0.0

    async def pseudonym(self, department: str, resident_id: str) -> str | None:
        key = _key(department, resident_id)
        if key in self.cache:
            return self.cache[key]
        if self._withholds(key, time.monotonic()):
            return None
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
        if _unavailable(response):
            raise IdentityUnavailable(f"identity answered {response.status_code}")
        if response.status_code != 200:
            return None  # e.g. a department identity does not know: withhold
        pseudonym = str(response.json()["pseudonym"])
        self._keep(key, pseudonym)
        return pseudonym

    async def prefetch(self, pairs: set[tuple[str, str]]) -> None:
        """Asks identity's batch endpoint for every pair not remembered, ``BATCH_SIZE`` at a
        time. A value that is no resident ID number is withheld without asking (identity
        would refuse it, and with it the whole batch). If identity answers the batch with
        anything but 200 or an outage, nothing is remembered: ``pseudonym`` asks one by one."""
        now = time.monotonic()
        if now - self._pruned_at > self.withheld_seconds:  # forget what is no longer withheld
            self.withheld = {k: t for k, t in self.withheld.items() if self._withholds(k, now)}
            self._pruned_at = now
        wanted: dict[tuple[str, str], tuple[str, str]] = {}
        for department, value in pairs:
            key = _key(department, value)
            if key in self.cache or key in wanted or self._withholds(key, now):
                continue
            try:
                validate_resident_id(value)
            except InvalidIdentifier:
                self.withheld[key] = now
                continue
            wanted[key] = (department, value)
        if not wanted:
            return
        if len(self.cache) + len(wanted) > self.cache_size:
            self.cache.clear()  # now, not halfway through filling it
        headers = await self.exchange.identity_headers()
        http = self.exchange.http
        if headers is None or http is None:
            return  # not enrolled at identity: ``pseudonym`` withholds
        url = self.exchange.identity_url() + PAIRWISE_BATCH_PATH
        keys = list(wanted)
        for start in range(0, len(keys), BATCH_SIZE):
            chunk = keys[start : start + BATCH_SIZE]
            items = [{"department": d, "resident_id": v} for d, v in (wanted[k] for k in chunk)]
            try:
                response = await http.post(url, json={"items": items}, headers=headers)
            except httpx.HTTPError as exc:
                raise IdentityUnavailable(f"identity: {type(exc).__name__}") from exc
            if _unavailable(response):
                raise IdentityUnavailable(f"identity answered {response.status_code}")
            if response.status_code != 200:
                return
            answers = response.json()["pseudonyms"]
            since = time.monotonic()
            for key, answer in zip(chunk, answers, strict=True):
                if answer["pseudonym"] is None:
                    self.withheld[key] = since
                else:
                    self._keep(key, str(answer["pseudonym"]))

    def _withholds(self, key: tuple[str, str], now: float) -> bool:
        since = self.withheld.get(key)
        return since is not None and now - since < self.withheld_seconds

    def _keep(self, key: tuple[str, str], pseudonym: str) -> None:
        if len(self.cache) >= self.cache_size:
            self.cache.clear()
        self.cache[key] = pseudonym
