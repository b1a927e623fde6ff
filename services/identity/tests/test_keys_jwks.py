"""Identity publishes its signing keys and discovery document; its tokens verify with the kit
against what it publishes, before and after a rotation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tongban_identity.keys.service import RETIRED_KEYS_PUBLISHED_FOR, rotate_keys
from tongban_identity.main import create_app
from tongban_identity.settings import IdentitySettings
from tongban_identity.tokens.service import issue_access_token
from tongban_kit.auth import JwksCache, verify_access_token
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import running_app

AUDIENCE = "tongban:440300"


@dataclass
class Identity:
    app: FastAPI
    client: httpx.AsyncClient
    settings: IdentitySettings

    async def issue(self, **overrides: object) -> str:
        values: dict[str, object] = {
            "subject": "person-7f3a",
            "audience": AUDIENCE,
            "scope": ["registration:apply", "registration:read"],
            "acr": "substantial",
            "amr": ["pwd", "otp"],
            "auth_time": datetime.now(UTC),
            "node": self.settings.node.node_code,
        }
        values.update(overrides)
        async with self.app.state.sessionmaker() as session, session.begin():
            return await issue_access_token(
                session,
                vault=self.app.state.key_vault,
                issuer=self.settings.issuer,
                **values,  # type: ignore[arg-type]
            )

    def jwks_cache(self) -> JwksCache:
        """The kit's key cache, reading identity's JWKS over HTTP (ASGI transport)."""
        return JwksCache(f"{self.client.base_url}/.well-known/jwks.json", self.client)

    async def verify(self, token: str, jwks: JwksCache) -> str:
        claims = await verify_access_token(
            token, jwks=jwks, issuer=self.settings.issuer, audience=AUDIENCE
        )
        return claims.sub

    async def published_kids(self) -> list[str]:
        response = await self.client.get("/.well-known/jwks.json")
        return [key["kid"] for key in response.json()["keys"]]

    async def sql(self, statement: str, **params: object) -> list[tuple[object, ...]]:
        engine = create_async_engine(self.settings.database_url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(statement), params)
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()


@pytest.fixture
async def identity(make_database, node_settings: NodeSettings) -> AsyncIterator[Identity]:  # type: ignore[no-untyped-def]
    url = await make_database("tongban_identity:migrations")
    settings = IdentitySettings(database_url=url, node=node_settings, run_workers=False)
    app = create_app(settings)
    async with running_app(app) as client:
        yield Identity(app, client, settings)


async def test_a_fresh_node_publishes_an_active_and_a_next_key_cacheably(
    identity: Identity,
) -> None:
    response = await identity.client.get("/.well-known/jwks.json")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    keys = response.json()["keys"]
    assert len(keys) == 2
    for key in keys:
        assert set(key) == {"kid", "kty", "crv", "x", "y", "alg", "use"}
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
    states = await identity.sql("SELECT state FROM signing_keys ORDER BY state")
    assert states == [("active",), ("next",)]


async def test_a_token_identity_issues_verifies_against_the_jwks_it_serves(
    identity: Identity,
) -> None:
    token = await identity.issue()

    assert await identity.verify(token, identity.jwks_cache()) == "person-7f3a"
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    [(active,)] = await identity.sql("SELECT kid FROM signing_keys WHERE state = 'active'")
    assert header["kid"] == active


async def test_an_access_token_carries_the_agreed_claims(identity: Identity) -> None:
    token = await identity.issue()

    claims = jwt.decode(token, options={"verify_signature": False})

    assert set(claims) == {
        "iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "acr", "amr", "auth_time", "node"
    }  # fmt: skip
    assert claims["iss"] == identity.settings.issuer
    assert claims["exp"] - claims["iat"] == 300
    assert claims["scope"] == "registration:apply registration:read"


async def test_an_access_token_stays_under_2_kb(identity: Identity) -> None:
    scopes = [f"registration:{verb}" for verb in ("apply", "read", "amend", "withdraw")] + [
        f"exchange:{dataset}:read" for dataset in ("tax", "social-security", "statistics")
    ]

    token = await identity.issue(
        subject="3f0c6a3e-5d0b-4c61-9d5e-0d8c8a1b2c3d",
        scope=scopes,
        audience=[AUDIENCE, "tongban:100000"],
        acr="high",
        amr=["pwd", "otp", "hwk"],
    )

    assert len(token.encode()) < 2048


async def test_a_token_cannot_outlive_ten_minutes(identity: Identity) -> None:
    with pytest.raises(ValueError, match=r"1\.\.600"):
        await identity.issue(lifetime_s=601)


async def test_after_rotation_the_next_key_signs_and_older_tokens_still_verify(
    identity: Identity,
) -> None:
    jwks = identity.jwks_cache()
    old_token = await identity.issue()
    await identity.verify(old_token, jwks)
    old_active, old_next = await identity.published_kids()

    rotation = await rotate_keys(identity.settings.database_url, identity.settings)
    new_token = await identity.issue()

    assert (rotation.active, rotation.retired) == (old_next, old_active)
    assert jwt.get_unverified_header(new_token)["kid"] == old_next
    assert await identity.published_kids() == [old_next, rotation.next, old_active]
    assert await identity.verify(old_token, jwks) == "person-7f3a"
    assert await identity.verify(new_token, jwks) == "person-7f3a"


async def test_a_retired_key_leaves_the_jwks_once_its_tokens_have_expired(
    identity: Identity,
) -> None:
    rotation = await rotate_keys(identity.settings.database_url, identity.settings)
    assert rotation.retired in await identity.published_kids()
    long_ago = datetime.now(UTC) - RETIRED_KEYS_PUBLISHED_FOR - timedelta(seconds=1)

    await identity.sql(
        "UPDATE signing_keys SET retired_at = :at WHERE state = 'retired'", at=long_ago
    )

    assert await identity.published_kids() == [rotation.active, rotation.next]


async def test_private_keys_are_encrypted_at_rest_and_erased_on_retirement(
    identity: Identity,
) -> None:
    await rotate_keys(identity.settings.database_url, identity.settings)

    rows = await identity.sql("SELECT state, private_key_encrypted FROM signing_keys")

    sealed = {state: value for state, value in rows}
    assert set(sealed) == {"active", "next", "retired"}
    assert sealed["retired"] is None
    for state in ("active", "next"):
        value = bytes(sealed[state])  # type: ignore[arg-type]
        assert b"BEGIN" not in value
        assert b"PRIVATE KEY" not in value


async def test_the_discovery_document_names_the_issuer_and_its_keys(identity: Identity) -> None:
    response = await identity.client.get("/.well-known/openid-configuration")

    assert response.status_code == 200
    document = response.json()
    issuer = identity.settings.node.token_issuer
    assert document["issuer"] == issuer
    assert document["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert document["id_token_signing_alg_values_supported"] == ["ES256"]
    assert document["acr_values_supported"] == ["low", "substantial", "high"]
    assert document["token_endpoint"] == f"{document['issuer']}/oauth/token"
