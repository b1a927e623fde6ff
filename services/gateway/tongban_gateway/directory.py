"""The node's copy of the central directory: fetched, checked, cached, and kept on disk.

Like X-Road's signed global configuration: the central node (100000) publishes the directory
as a JWS signed with its node key (identity's ``/.well-known/tongban-directory.jwt``); every
gateway fetches it every ``directory_refresh_s`` (60 s), checks the signature against the
trust anchor (central's node key: ``directory_anchor_file``, written by ``tongban directory
enrol``; outside production, central's development key), and keeps the newest copy it has
checked, in memory and in ``directory_cache_file``. While central cannot be reached the node
works on that copy, also across a restart, until the copy's ``exp`` (600 s after central
issued it); then node-to-node traffic is refused with a 503 until a fresh copy arrives. The
copy's age is in ``/readyz`` (``details.directory``) and in the metric
``tongban_directory_age_seconds``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from jwt.algorithms import ECAlgorithm

from tongban_gateway.config import RouteConfigError
from tongban_gateway.settings import GatewaySettings
from tongban_kit.auth.node_keys import (
    CENTRAL_NODE,
    development_node_key,
    node_identifier,
    public_jwk,
)
from tongban_kit.errors import ServiceUnavailable

__all__ = ["Directory", "DirectoryCopy", "NodeEntry", "covering_codes"]

logger = logging.getLogger("tongban.gateway.directory")

DIRECTORY_TYPE = "tongban-directory+jwt"


class DirectoryRefused(Exception):
    """A fetched or cached document is not a directory signed by the anchor."""


@dataclass(frozen=True, slots=True)
class NodeEntry:
    code: str
    name: str
    gateway_url: str
    token_issuer: str
    keys: dict[str, EllipticCurvePublicKey]  # by kid
    status: str


@dataclass(frozen=True, slots=True)
class DirectoryCopy:
    document: str
    issued_at: int
    expires_at: int
    nodes: dict[str, NodeEntry]


def covering_codes(division: str) -> tuple[str, ...]:
    """The node codes that may hold a division (GB/T 2260): itself, its city, its province."""
    return tuple(dict.fromkeys((division, division[:4] + "00", division[:2] + "0000")))


def _keys(jwks: Any) -> dict[str, EllipticCurvePublicKey]:
    keys: dict[str, EllipticCurvePublicKey] = {}
    for jwk in (jwks or {}).get("keys", []):
        key = ECAlgorithm.from_jwk(jwk)
        if isinstance(key, EllipticCurvePublicKey) and isinstance(jwk.get("kid"), str):
            keys[jwk["kid"]] = key
    return keys


def read_anchor(settings: GatewaySettings) -> dict[str, EllipticCurvePublicKey]:
    """Central's node key(s) the directory must be signed with; ``RouteConfigError``."""
    path = settings.directory_anchor_file
    if path is None:
        if settings.node.environment == "production":
            raise RouteConfigError(
                "TONGBAN_GATEWAY_DIRECTORY_ANCHOR_FILE must name the central node's key in "
                "production (written by `tongban directory enrol --anchor-file`)"
            )
        jwk = public_jwk(development_node_key(CENTRAL_NODE))
        return _keys({"keys": [jwk]})
    try:
        keys = _keys(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, AttributeError, jwt.InvalidKeyError) as exc:
        raise RouteConfigError(f"TONGBAN_GATEWAY_DIRECTORY_ANCHOR_FILE={path}: {exc}") from None
    if not keys:
        raise RouteConfigError(f"TONGBAN_GATEWAY_DIRECTORY_ANCHOR_FILE={path}: no P-256 key")
    return keys


def check_document(document: str, anchor: dict[str, EllipticCurvePublicKey]) -> DirectoryCopy:
    """The directory in ``document`` if the anchor signed it (expired or not)."""
    try:
        header = jwt.get_unverified_header(document)
        key = anchor.get(header.get("kid", ""))
        if key is None or header.get("typ") != DIRECTORY_TYPE:
            raise DirectoryRefused("not signed by the central node's key")
        claims = jwt.decode(
            document,
            key,
            algorithms=["ES256"],
            issuer=node_identifier(CENTRAL_NODE),
            options={"verify_exp": False, "require": ["iss", "iat", "exp"]},
        )
        nodes = {
            entry["code"]: NodeEntry(
                code=entry["code"],
                name=entry["name"],
                gateway_url=entry["gateway_url"].rstrip("/"),
                token_issuer=entry["token_issuer"],
                keys=_keys(entry["jwks"]),
                status=entry["status"],
            )
            for entry in claims["nodes"]
        }
    except (jwt.PyJWTError, KeyError, TypeError, AttributeError, ValueError) as exc:
        raise DirectoryRefused(f"{type(exc).__name__}: {exc}") from None
    return DirectoryCopy(document, int(claims["iat"]), int(claims["exp"]), nodes)


class Directory:
    """The newest checked copy of the directory, refreshed in the background."""

    def __init__(self, settings: GatewaySettings) -> None:
        assert settings.directory_url is not None
        self.url = settings.directory_url
        self.own = settings.node.node_code
        self.refresh_s = settings.directory_refresh_s
        self.cache_file = settings.directory_cache_file
        self.anchor = read_anchor(settings)
        self.copy: DirectoryCopy | None = None
        self.last_error: str | None = None
        self.fetched_at: float | None = None

    def load_cached(self) -> None:
        """The copy kept on disk, if any and still signed by the anchor."""
        if self.cache_file is None or not self.cache_file.exists():
            return
        try:
            self._accept(check_document(self.cache_file.read_text(encoding="ascii"), self.anchor))
            logger.info("directory: the cached copy in %s is used", self.cache_file)
        except (OSError, UnicodeDecodeError, DirectoryRefused) as exc:
            logger.warning("directory: the cached copy in %s is refused (%s)", self.cache_file, exc)

    async def refresh(self, session: aiohttp.ClientSession, *, timeout_s: float = 10.0) -> None:
        """Fetch and check the directory; keep it when it is at least as new as ours."""
        try:
            timeout = aiohttp.ClientTimeout(total=timeout_s)
            async with session.get(self.url, timeout=timeout) as response:
                if response.status != 200:
                    raise DirectoryRefused(f"{self.url} answered {response.status}")
                document = (await response.text()).strip()
            copy = check_document(document, self.anchor)
        except (aiohttp.ClientError, TimeoutError, DirectoryRefused, UnicodeDecodeError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            logger.warning("directory: refresh from %s failed (%s)", self.url, self.last_error)
            return
        self.last_error = None
        self.fetched_at = time.time()
        if self.copy is not None and copy.issued_at < self.copy.issued_at:
            return  # an older document than ours (a replayed response): ours stays
        self._accept(copy)
        self._persist(document)

    async def start(self, session: aiohttp.ClientSession) -> None:
        """The copy on disk, then one quick fetch, so the node starts with the newest copy it
        can have (a central that is down delays the start by 3 s at most)."""
        self.load_cached()
        await self.refresh(session, timeout_s=3.0)

    async def refresh_forever(self, session: aiohttp.ClientSession) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            await self.refresh(session)

    def _accept(self, copy: DirectoryCopy) -> None:
        if self.copy is None or copy.issued_at >= self.copy.issued_at:
            self.copy = copy

    def _persist(self, document: str) -> None:
        if self.cache_file is None:
            return
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.cache_file.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(document, encoding="ascii")
            temporary.replace(self.cache_file)  # atomic: a reader sees the old copy or the new
        except OSError as exc:
            logger.warning("directory: cannot keep the copy in %s (%s)", self.cache_file, exc)

    def age_s(self) -> float:
        """Seconds since central issued our copy; -1 without one."""
        return time.time() - self.copy.issued_at if self.copy else -1.0

    def valid(self) -> DirectoryCopy:
        """Our copy while it is valid; ``ServiceUnavailable`` (503) otherwise."""
        copy = self.copy
        if copy is None:
            raise ServiceUnavailable(
                "This node has no copy of the node directory yet.", headers={"retry-after": "60"}
            )
        if time.time() >= copy.expires_at:
            raise ServiceUnavailable(
                "This node's copy of the node directory has expired (central cannot be "
                "reached); node-to-node requests wait for a fresh one.",
                headers={"retry-after": "60"},
            )
        return copy

    def node(self, code: str) -> NodeEntry | None:
        """An active node other than this one, or None; 503 without a valid copy."""
        entry = self.valid().nodes.get(code)
        if entry is None or entry.status != "active" or code == self.own:
            return None
        return entry

    def holder(self, division: str) -> NodeEntry | None:
        """The other node holding businesses of ``division``, or None when it is this node's
        own (or nobody's): the most specific enrolled node covering it."""
        for code in covering_codes(division):
            if code == self.own:
                return None
            if self.copy is not None and code in self.copy.nodes:
                return self.node(code)
        return None

    def details(self) -> dict[str, Any]:
        """For ``/readyz``."""
        copy = self.copy
        return {
            "url": self.url,
            "age_s": round(self.age_s(), 1) if copy else None,
            "expires_in_s": round(copy.expires_at - time.time(), 1) if copy else None,
            "valid": copy is not None and time.time() < copy.expires_at,
            "nodes": sorted(copy.nodes) if copy else [],
            "last_error": self.last_error,
        }
