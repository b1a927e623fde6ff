"""Identity checks the tokens it issued the way every service does: against its own JWKS.

Other services fetch identity's key set over the network (``tongban_kit.auth``). Identity
reads its own through its own ASGI app (``httpx.ASGITransport``): no socket, no port, no
gateway in the way, and it trusts exactly the keys it publishes, rotation included.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from tongban_identity.settings import IdentitySettings
from tongban_kit.auth import token_verification

__all__ = ["own_token_verification", "token_endpoint"]

_SELF = "http://identity.internal"


def token_endpoint(settings: IdentitySettings) -> str:
    """The token endpoint's public URL: what a client assertion's ``aud`` names."""
    return f"{settings.issuer}/oauth/token"


@contextlib.asynccontextmanager
async def own_token_verification(app: FastAPI, settings: IdentitySettings) -> AsyncIterator[None]:
    """For identity's lifespan, once its signing keys are ready: ``require()`` works here."""
    transport = httpx.ASGITransport(app)
    async with (
        httpx.AsyncClient(transport=transport, base_url=_SELF) as client,
        token_verification(
            app,
            jwks_url=f"{_SELF}/.well-known/jwks.json",
            issuer=settings.issuer,
            audience=settings.token_audience,
            http_client=client,
        ),
    ):
        yield
