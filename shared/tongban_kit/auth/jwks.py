"""A cache of the identity service's public signing keys (its JWKS, RFC 7517), by key id.

Every service verifies tokens locally; this is where the keys come from. The rules:

* keys are fetched on first use and again when the copy is older than ``refresh_s``
  (``run()`` refreshes in the background so requests never wait for it);
* a token naming a key id the cache does not hold triggers a refetch, because identity
  publishes a new key before it signs with it;
* identity is asked at most once per ``min_refetch_s`` (once a second while no key is held
  yet), whatever the reason, so a flood of
  tokens with invented key ids (or a fleet of services while identity restarts) costs it
  one request per interval; concurrent callers share one fetch;
* if a refresh fails, the keys already held stay in use for up to ``max_stale_s`` after the
  last success; with nothing usable, the caller gets ``ServiceUnavailable`` (503), never a
  401: the token may be fine, we just cannot tell.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from jwt.algorithms import ECAlgorithm
from jwt.exceptions import InvalidKeyError

from tongban_kit.errors import ServiceUnavailable

__all__ = ["JwksCache", "UnknownKeyId"]

logger = logging.getLogger("tongban.auth.jwks")

_MAX_JWKS_BYTES = 256 * 1024
_COLD_RETRY_S = 1.0


class UnknownKeyId(LookupError):
    """No published key has this id, even after asking identity again (or asking was too soon)."""


class JwksCache:
    """Public ES256 keys of one issuer, fetched from ``url`` with the caller's ``http_client``.

    The caller owns the client (and closes it). Build one per process in the lifespan; see
    ``tongban_kit.auth.token_verification`` for the usual wiring.
    """

    def __init__(
        self,
        url: str,
        http_client: httpx.AsyncClient,
        *,
        refresh_s: float = 300.0,
        min_refetch_s: float = 10.0,
        max_stale_s: float = 3600.0,
        fetch_timeout_s: float = 3.0,
    ) -> None:
        self.url = url
        self._client = http_client
        self.refresh_s = refresh_s
        self.min_refetch_s = min_refetch_s
        self.max_stale_s = max_stale_s
        self._timeout = fetch_timeout_s
        self._keys: dict[str, EllipticCurvePublicKey] = {}
        self._fetched_at: float | None = None  # last success (monotonic)
        self._attempted_at: float | None = None  # last request, successful or not
        self._last_failure = ""
        self._lock = asyncio.Lock()

    @property
    def key_ids(self) -> frozenset[str]:
        """Ids of the keys held now."""
        return frozenset(self._keys)

    async def get_key(self, kid: str) -> EllipticCurvePublicKey:
        """The public key named ``kid``.

        Raises ``UnknownKeyId`` if identity does not publish it, ``ServiceUnavailable`` if the
        keys cannot be had at all.
        """
        if self._is_stale():
            await self._refresh_if_allowed()
            self._drop_if_too_stale()
        if kid not in self._keys and self._fetched_at is not None:
            # Perhaps a key published since we last looked; refresh_if_allowed rate-limits.
            await self._refresh_if_allowed()
        if self._fetched_at is None:
            raise ServiceUnavailable(
                f"the token signing keys cannot be fetched from identity ({self._last_failure})"
            )
        key = self._keys.get(kid)
        if key is None:
            if self._last_failure:  # identity is not answering: the key may well exist
                raise ServiceUnavailable(
                    f"the token's signing key cannot be looked up ({self._last_failure})"
                )
            raise UnknownKeyId(kid)
        return key

    async def ready(self) -> None:
        """A readiness check: fails while no key is held (every token would get a 503)."""
        if not self._keys:
            raise RuntimeError(f"no keys from {self.url} yet {self._last_failure}".strip())

    async def refresh(self) -> None:
        """Fetch the key set now (still at most once per ``min_refetch_s``).

        Raises ``ServiceUnavailable`` if the fetch fails; the keys held stay as they were.
        """
        await self._refresh_if_allowed()
        if self._last_failure and self._attempted_at != self._fetched_at:
            raise ServiceUnavailable(f"the JWKS cannot be fetched ({self._last_failure})")

    async def run(self) -> None:
        """Refresh every ``refresh_s`` until cancelled; a failure is logged and retried after
        ``min_refetch_s``, or within a second while no key is held (identity starting)."""
        while True:
            try:
                await self.refresh()
            except ServiceUnavailable as exc:
                logger.warning("JWKS refresh failed: %s", exc.detail)
                await asyncio.sleep(self._retry_interval())
                continue
            await asyncio.sleep(self.refresh_s)

    def _is_stale(self) -> bool:
        return self._fetched_at is None or time.monotonic() - self._fetched_at >= self.refresh_s

    def _drop_if_too_stale(self) -> None:
        if self._fetched_at is not None and time.monotonic() - self._fetched_at > self.max_stale_s:
            logger.error("JWKS not refreshed for over %.0f s; dropping the keys", self.max_stale_s)
            self._keys, self._fetched_at = {}, None

    def _retry_interval(self) -> float:
        # Holding nothing (identity starting), ask again sooner: every request is a 503 now.
        return self.min_refetch_s if self._keys else min(self.min_refetch_s, _COLD_RETRY_S)

    def _may_fetch(self) -> bool:
        return (
            self._attempted_at is None
            or time.monotonic() - self._attempted_at >= self._retry_interval()
        )

    async def _refresh_if_allowed(self) -> None:
        # Always through the lock: a caller arriving during a fetch waits for its result.
        async with self._lock:
            if not self._may_fetch():
                return
            self._attempted_at = time.monotonic()
            try:
                keys = await self._fetch()
            except ServiceUnavailable as exc:
                self._last_failure = exc.detail
                logger.warning("JWKS fetch from %s failed: %s", self.url, exc.detail)
                return
            self._keys, self._fetched_at, self._last_failure = keys, self._attempted_at, ""

    async def _fetch(self) -> dict[str, EllipticCurvePublicKey]:
        try:
            response = await self._client.get(
                self.url, timeout=self._timeout, headers={"accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(type(exc).__name__) from exc
        if response.status_code != 200:
            raise ServiceUnavailable(f"HTTP {response.status_code}")
        if len(response.content) > _MAX_JWKS_BYTES:
            raise ServiceUnavailable("key set too large")
        try:
            document = response.json()
        except ValueError as exc:
            raise ServiceUnavailable("not JSON") from exc
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise ServiceUnavailable("no 'keys' list")
        return _signing_keys(entries)


def _signing_keys(entries: list[Any]) -> dict[str, EllipticCurvePublicKey]:
    """The ES256 signature keys of a JWKS; anything else in it is skipped, not fatal."""
    keys: dict[str, EllipticCurvePublicKey] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        kid = entry.get("kid")
        if (
            not isinstance(kid, str)
            or not kid
            or entry.get("kty") != "EC"
            or entry.get("crv") != "P-256"
            or entry.get("alg", "ES256") != "ES256"
            or entry.get("use", "sig") != "sig"
        ):
            continue
        # Only the public members: a private "d" published by mistake must not become a key.
        public = {name: entry.get(name) for name in ("kty", "crv", "x", "y")}
        try:
            key = ECAlgorithm.from_jwk(public)
        except (InvalidKeyError, ValueError, TypeError):
            logger.warning("JWKS key %r is malformed; skipped", kid[:64])
            continue
        if isinstance(key, EllipticCurvePublicKey):
            keys[kid] = key
    return keys
