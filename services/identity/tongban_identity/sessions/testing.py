"""Test support for sign-in: identity running in-process, driven over HTTP (ASGI).

``running_identity(database_url, node, **settings)`` starts identity with a fast password
hasher and yields a ``SignInDriver`` that signs people up, logs them in, refreshes tokens,
verifies access tokens against identity's own JWKS and reads the database.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tongban_identity.main import create_app
from tongban_identity.settings import IdentitySettings
from tongban_kit.auth import AccessClaims, JwksCache, verify_access_token
from tongban_kit.crypto import PasswordHasher
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import running_app

PASSWORD = "correct horse battery staple"  # noqa: S105 -- the tests' password
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(sequence: int = 2, *, birth: str = "19491231", division: str = "110105") -> str:
    """A valid GB 11643 number (check character computed) for test person ``sequence``."""
    body = f"{division}{birth}{sequence:03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]


def fast_hasher() -> PasswordHasher:
    """Argon2id at a tiny cost: tests that do not measure hashing need not pay for it."""
    return PasswordHasher(memory_cost=1024, time_cost=1)


@dataclass
class SignInDriver:
    app: FastAPI
    client: httpx.AsyncClient
    settings: IdentitySettings
    engine: AsyncEngine

    @contextlib.asynccontextmanager
    async def client_at(self, host: str) -> AsyncIterator[httpx.AsyncClient]:
        """A client whose requests come from ``host`` (as ``request.client.host``)."""
        transport = httpx.ASGITransport(self.app, client=(host, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://identity") as client:
            yield client

    async def sign_up(self, resident_id: str = resident_id(), password: str = PASSWORD) -> str:
        response = await self.client.post(
            "/v1/persons",
            json={
                "resident_id": resident_id,
                "name": "王小明",
                "phone": "13812345678",
                "password": password,
            },
        )
        assert response.status_code == 201, response.text
        person_id: str = response.json()["id"]
        return person_id

    async def login(
        self,
        resident_id: str = resident_id(),
        password: str = PASSWORD,
        *,
        totp: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> httpx.Response:
        body = {"resident_id": resident_id, "password": password}
        if totp is not None:
            body["totp"] = totp
        return await (client or self.client).post("/v1/login", json=body)

    async def tokens(self, resident_id: str = resident_id(), **kwargs: Any) -> dict[str, Any]:
        """Log in, which must succeed; the token response."""
        response = await self.login(resident_id, **kwargs)
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    async def refresh(self, refresh_token: str, **form: str) -> httpx.Response:
        return await self.client.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token, **form},
        )

    async def verify(self, access_token: str) -> AccessClaims:
        """Verify as any service of the node would, against identity's published keys."""
        jwks = JwksCache(f"{self.client.base_url}/.well-known/jwks.json", self.client)
        return await verify_access_token(
            access_token,
            jwks=jwks,
            issuer=self.settings.issuer,
            audience=self.settings.token_audience,
        )

    async def sql(self, statement: str, **params: Any) -> list[tuple[Any, ...]]:
        async with self.engine.begin() as conn:
            result = await conn.execute(text(statement), params)
            return [tuple(row) for row in result] if result.returns_rows else []

    async def count(self, table: str) -> int:
        [(n,)] = await self.sql(f"SELECT count(*) FROM {table}")  # noqa: S608 -- test tables
        return int(n)


@contextlib.asynccontextmanager
async def running_identity(
    database_url: str,
    node: NodeSettings,
    *,
    hasher: PasswordHasher | None = None,
    **settings: Any,
) -> AsyncIterator[SignInDriver]:
    """Identity on ``database_url`` (migrated), with ``settings`` overriding the defaults."""
    identity_settings = IdentitySettings(database_url=database_url, node=node, **settings)
    app = create_app(identity_settings)
    app.state.password_hasher = hasher or fast_hasher()
    engine = create_async_engine(database_url)
    try:
        async with running_app(app, base_url="http://identity") as client:
            yield SignInDriver(app, client, identity_settings, engine)
    finally:
        await engine.dispose()
