"""Visitors (跨省通办): people registered at another node, signed in with their home node's
access tokens. The gateway and every service apply the same rules, here.

A token whose ``iss`` is not this node's issuer is a visitor's token. It is accepted only when:

* this node follows the central directory and holds a valid copy (else 503: we cannot tell);
* ``iss`` is the ``token_issuer`` of a node the copy lists as ``active``, not this node;
* it is an ES256 ``at+jwt`` signed by a key that node's identity publishes at
  ``<iss>/.well-known/jwks.json`` (fetched and cached by ``kid`` like this node's own keys);
* ``aud`` names this node's audience or the home node's (``tongban:<home code>``);
* ``node`` is the home node's code, and it is a person's token (no ``department``);
* the usual checks of ``verify_access_token`` hold (times, required claims).

The claims then keep only the scopes this node allows visitors (``TONGBAN_VISITOR_SCOPES``):
``tongban:admin``, officer and department scopes are dropped, and so is ``business`` (a
delegation is recorded at the home node, not here). ``sub`` becomes ``<home code>:<sub>`` (at
most 100 characters before), so a visitor is never taken for a person of this node. A visitor
is a ``person`` whose ``node`` is not this node's code (``is_visitor``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping

import httpx
from fastapi import FastAPI

from tongban_kit.auth.challenges import InvalidToken
from tongban_kit.auth.claims import OPERATOR_SCOPE, AccessClaims
from tongban_kit.auth.jwks import JwksCache
from tongban_kit.auth.node_trust import DirectoryProblem, NodeDirectory, load_anchor, read_directory
from tongban_kit.errors import ServiceUnavailable
from tongban_kit.settings import NodeSettings

__all__ = ["DirectoryFollower", "TrustedIssuers", "is_visitor", "visitor_verification"]

logger = logging.getLogger("tongban.auth.visitors")

#: issuer -> node code, for the active nodes of a valid directory copy; raises
#: ``ServiceUnavailable`` without one.
IssuerMap = Callable[[], Mapping[str, str]]
_MAX_VISITOR_SUB = 100  # with "<home code>:" in front it fits services' 128-character columns


def is_visitor(claims: AccessClaims, node_code: str) -> bool:
    """Whether ``claims`` are a visitor's (signed in at another node)."""
    return claims.node != node_code


def issuers_of(directory: NodeDirectory, own_code: str) -> dict[str, str]:
    """The token issuers of the directory's active nodes other than ``own_code``."""
    return {
        entry.token_issuer: code
        for code, entry in directory.nodes.items()
        if entry.status == "active" and code != own_code and entry.token_issuer
    }


class TrustedIssuers:
    """The other nodes' token issuers this node accepts visitors from, and their keys."""

    def __init__(
        self,
        issuers: IssuerMap,
        http_client: httpx.AsyncClient,
        *,
        own_code: str,
        scopes: Iterable[str],
        refresh: Callable[[], Awaitable[None]] | None = None,
        min_refetch_s: float = 10.0,
    ) -> None:
        self._issuers = issuers
        self._refresh = refresh
        self._refreshed_at = -min_refetch_s
        self._lock = asyncio.Lock()
        self._client = http_client
        self.own_code = own_code
        self.scopes = frozenset(scopes) - {OPERATOR_SCOPE}
        self._min_refetch_s = min_refetch_s
        self._keys: dict[str, JwksCache] = {}

    async def home_of(self, issuer: object) -> tuple[str, JwksCache]:
        """The home node of a visitor's token from ``issuer`` and its keys; ``InvalidToken``
        when no active node of the directory issues tokens as ``issuer``. An issuer our copy
        does not list makes us fetch the directory again first (a node enrolled since), at
        most once per ``min_refetch_s`` whoever asks."""
        if not isinstance(issuer, str):
            raise InvalidToken("the token's issuer is not an active node of the directory")
        code = self._known(issuer) if self._refresh is not None else None
        if code is None:
            if self._refresh is not None:
                async with self._lock:
                    if time.monotonic() - self._refreshed_at >= self._min_refetch_s:
                        self._refreshed_at = time.monotonic()
                        await self._refresh()
            code = self._issuers().get(issuer)  # 503 without a valid copy
        if code is None or code == self.own_code:
            raise InvalidToken("the token's issuer is not an active node of the directory")
        cache = self._keys.get(issuer)
        if cache is None:
            # Bounded: only issuers the signed directory lists get a cache.
            cache = JwksCache(
                f"{issuer}/.well-known/jwks.json",
                self._client,
                min_refetch_s=self._min_refetch_s,
            )
            self._keys[issuer] = cache
        return code, cache

    def _known(self, issuer: str) -> str | None:
        try:
            return self._issuers().get(issuer)
        except ServiceUnavailable:
            return None  # no valid copy: fetch one, then ask again (503 if still none)

    @staticmethod
    def home_audience(code: str) -> str:
        return f"tongban:{code}"

    def admit(self, claims: AccessClaims, home: str) -> AccessClaims:
        """A verified visitor token's claims as this node takes them: visitor scopes only."""
        if claims.node != home:
            raise InvalidToken("the token's 'node' claim is not its issuer's node")
        if claims.department is not None or claims.client_id is not None:
            raise InvalidToken("only people sign in as visitors, not departments")
        if len(claims.sub) > _MAX_VISITOR_SUB:
            raise InvalidToken("the token's 'sub' claim is too long for a visitor")
        kept = [scope for scope in claims.scope.split() if scope in self.scopes]
        # The home node speaks for its own people only: its subjects get its code in front,
        # so no node can pass one of its tokens off as a person of another node.
        update = {"sub": f"{home}:{claims.sub}", "scope": " ".join(kept), "business": None}
        return claims.model_copy(update=update)


class DirectoryFollower:
    """A process's copy of the central directory, for visitors' tokens (every service's and
    the gateway's; the gateway's routing follows its own copy, ``tongban_gateway.directory``,
    of the same signed document)."""

    def __init__(self, node: NodeSettings) -> None:
        assert node.directory_url is not None
        self.url = node.directory_url
        self.own = node.node_code
        self.anchor = load_anchor(
            node.directory_anchor_file,
            production=node.environment == "production",
            setting="TONGBAN_DIRECTORY_ANCHOR_FILE",
        )
        self.copy: NodeDirectory | None = None
        self.last_error: str | None = None

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

    def issuers(self) -> dict[str, str]:
        """``IssuerMap`` over the valid copy; 503 without one."""
        copy = self.copy
        if copy is None or not copy.valid:
            raise ServiceUnavailable(
                "This node has no valid copy of the node directory to check a visitor's "
                "token against; try again shortly.",
                headers={"retry-after": "60"},
            )
        return issuers_of(copy, self.own)


@contextlib.asynccontextmanager
async def visitor_verification(
    app: FastAPI, node: NodeSettings, *, refresh_s: float = 60.0
) -> AsyncIterator[TrustedIssuers]:
    """For a lifespan: ``app.state.visitors``, over a directory copy refreshed every
    ``refresh_s`` (``require`` consults it for tokens of other issuers)."""
    follower = DirectoryFollower(node)
    async with httpx.AsyncClient() as client:
        await follower.refresh(client, timeout_s=3.0)
        visitors = TrustedIssuers(
            follower.issuers,
            client,
            own_code=node.node_code,
            scopes=node.visitor_scopes,
            refresh=lambda: follower.refresh(client, timeout_s=3.0),
        )
        app.state.visitors = visitors

        async def follow() -> None:
            while True:
                # Without a valid copy (central starting), ask again soon.
                valid = follower.copy is not None and follower.copy.valid
                await asyncio.sleep(refresh_s if valid else min(refresh_s, 5.0))
                await follower.refresh(client)

        task = asyncio.create_task(follow(), name="directory-follower")
        try:
            yield visitors
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
