"""This node's side of the link to the central node: the directory and the node key.

The directory is fetched from ``national_directory_url`` every ``national_refresh_s`` and
kept while it verifies against the anchor (central's key); a regional node finds central's
address in it, the central node checks the assertions of other nodes against it. The node
key signs this node's assertions (``tongban_kit.auth.node_trust``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from tongban_exchange.settings import ExchangeSettings
from tongban_kit.auth.node_keys import (
    CENTRAL_NODE,
    development_node_key,
    load_node_key,
    public_jwk,
)
from tongban_kit.auth.node_trust import (
    AssertionProblem,
    DirectoryProblem,
    NodeDirectory,
    jwks_keys,
    read_directory,
    sign_assertion,
    verify_assertion,
)
from tongban_kit.auth.replay import MemoryReplayGuard, ReplayGuard
from tongban_kit.errors import NotFound, ServiceUnavailable, TongbanError

__all__ = ["EVENT_CLAIM", "FEED_CLAIM", "AssertionRefused", "CentralLink", "NationalOff"]

#: The claim of a forward's assertion that names the event it carries.
EVENT_CLAIM = "tongban_event"
#: The claim of an assertion that reads central's feed of national events.
FEED_CLAIM = "tongban_national_feed"

logger = logging.getLogger("tongban.exchange.national")


class AssertionRefused(TongbanError):
    """A node assertion that does not verify (401)."""

    status, title, type_slug = 401, "Unauthorized", "node-assertion-refused"


class NationalOff(NotFound):
    """National exchange is not configured here, or this is not the central node (404)."""


class CentralLink:
    """The directory copy, this node's key, and the assertions it signs and checks."""

    def __init__(self, settings: ExchangeSettings) -> None:
        assert settings.national_directory_url is not None
        production = settings.node.environment == "production"
        self.url = settings.national_directory_url
        self.own = settings.node.node_code
        self.refresh_s = settings.national_refresh_s
        self.central_override = settings.national_central_url
        self.key: ec.EllipticCurvePrivateKey = load_node_key(
            settings.node_key_file,
            node_code=self.own,
            production=production,
            setting="TONGBAN_EXCHANGE_NODE_KEY_FILE",
        )
        self.anchor = self._anchor(settings, production)
        self.copy: NodeDirectory | None = None
        self.last_error: str | None = None
        # The lifespan puts the Redis guard here when the service has Redis.
        self.replays: ReplayGuard = MemoryReplayGuard()

    @staticmethod
    def _anchor(
        settings: ExchangeSettings, production: bool
    ) -> dict[str, ec.EllipticCurvePublicKey]:
        path = settings.national_anchor_file
        if path is None:
            if production:
                raise ValueError("TONGBAN_EXCHANGE_NATIONAL_ANCHOR_FILE is required in production")
            return jwks_keys({"keys": [public_jwk(development_node_key(CENTRAL_NODE))]})
        keys = jwks_keys(json.loads(path.read_text(encoding="utf-8")))
        if not keys:
            raise ValueError(f"TONGBAN_EXCHANGE_NATIONAL_ANCHOR_FILE={path}: no P-256 key")
        return keys

    @property
    def is_central(self) -> bool:
        return self.own == CENTRAL_NODE

    async def refresh(self, http: httpx.AsyncClient, *, timeout_s: float = 10.0) -> None:
        """Fetch and check the directory; keep it when it is at least as new as ours."""
        try:
            response = await http.get(self.url, timeout=timeout_s)
            if response.status_code != 200:
                raise DirectoryProblem(f"{self.url} answered {response.status_code}")
            copy = read_directory(response.text.strip(), self.anchor)
        except (httpx.HTTPError, DirectoryProblem) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            logger.warning("directory: refresh from %s failed (%s)", self.url, self.last_error)
            return
        self.last_error = None
        if self.copy is None or copy.issued_at >= self.copy.issued_at:
            self.copy = copy

    async def refresh_forever(self, http: httpx.AsyncClient) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            await self.refresh(http)

    def directory(self) -> NodeDirectory:
        """The valid copy; 503 while there is none (a retry after a refresh will do)."""
        copy = self.copy
        if copy is None or not copy.valid:
            raise ServiceUnavailable(
                "This node has no valid copy of the node directory; try again shortly.",
                headers={"retry-after": "60"},
            )
        return copy

    def central_url(self) -> str:
        """Base URL of central's data-exchange API."""
        if self.central_override:
            return self.central_override.rstrip("/")
        entry = self.directory().active(CENTRAL_NODE)
        if entry is None:
            raise ServiceUnavailable("The directory lists no active central node.")
        return f"{entry.gateway_url}/api/exchange"

    def assertion(self, event_id: str) -> str:
        """This node's assertion for the central node, bound to the event it carries."""
        return sign_assertion(
            self.key, node_code=self.own, audience=CENTRAL_NODE, extra={EVENT_CLAIM: event_id}
        )

    def feed_assertion(self) -> str:
        """This node's assertion for reading central's feed of national events."""
        return sign_assertion(
            self.key, node_code=self.own, audience=CENTRAL_NODE, extra={FEED_CLAIM: True}
        )

    async def verify_feed(self, assertion: str) -> str:
        """The code of the node reading the feed (401 problem unless the assertion holds and
        was made for the feed)."""
        code, claims = await self._verified(assertion)
        if claims.get(FEED_CLAIM) is not True:
            raise AssertionRefused("The node assertion is not for the national feed.")
        return code

    async def _verified(self, assertion: str) -> tuple[str, dict[str, Any]]:
        try:
            return await verify_assertion(
                assertion, self.directory(), own_code=self.own, replays=self.replays
            )
        except AssertionProblem as exc:
            raise AssertionRefused(str(exc)) from None

    async def verify(self, assertion: str, event_id: str) -> str:
        """The code of the node that sent ``assertion`` with event ``event_id`` (401 problem
        when it does not hold, or names another event: an assertion the gateway made for a
        proxied request, or one taken from another forward, carries no event here)."""
        code, claims = await self._verified(assertion)
        if claims.get(EVENT_CLAIM) != event_id:
            raise AssertionRefused(f"The node assertion is not for event {event_id[:64]!r}.")
        return code

    def details(self) -> dict[str, Any]:
        copy = self.copy
        return {
            "directory_url": self.url,
            "directory_age_s": round(time.time() - copy.issued_at, 1) if copy else None,
            "directory_valid": copy is not None and copy.valid,
            "last_error": self.last_error,
        }
