"""The token endpoint keeps department clients in memory, but a change to a client made
anywhere (here: straight in the database, as another replica or an operator's command would)
counts from the client's very next token request: disabled, new keys, fewer scopes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tongban_identity.departments.testing import EnrolledClient, enrol_client
from tongban_identity.main import create_app
from tongban_identity.settings import IdentitySettings
from tongban_identity.signatures.testing import public_jwk
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import running_app

SCOPES = ["exchange:query", "exchange:subscribe"]


@dataclass
class Identity:
    app: FastAPI
    client: httpx.AsyncClient
    settings: IdentitySettings

    async def token(self, department: EnrolledClient, **extra: str) -> httpx.Response:
        endpoint = f"{self.settings.issuer}/oauth/token"
        form = {"grant_type": "client_credentials", **department.authentication(endpoint), **extra}
        return await self.client.post("/oauth/token", data=form)

    async def sql(self, statement: str, **params: Any) -> None:
        """Change the database from outside the app, the way another process would."""
        engine = create_async_engine(self.settings.database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text(statement), params)
        finally:
            await engine.dispose()


@pytest.fixture
async def identity(make_database, node_settings: NodeSettings) -> AsyncIterator[Identity]:  # type: ignore[no-untyped-def]
    url = await make_database("tongban_identity:migrations")
    settings = IdentitySettings(database_url=url, node=node_settings, run_workers=False)
    app = create_app(settings)
    async with running_app(app) as client:
        yield Identity(app, client, settings)


def claims(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    decoded: dict[str, Any] = jwt.decode(
        response.json()["access_token"], options={"verify_signature": False}
    )
    return decoded


async def test_a_client_disabled_elsewhere_gets_no_token_at_its_next_request(
    identity: Identity,
) -> None:
    tax = await enrol_client(identity.app, "tax", SCOPES)
    claims(await identity.token(tax))  # now in the endpoint's memory
    claims(await identity.token(tax))

    await identity.sql(
        "UPDATE department_clients SET disabled_at = now() WHERE client_id = :id", id=tax.client_id
    )
    refused = await identity.token(tax)

    assert refused.status_code == 401, refused.text
    assert refused.json()["error"] == "invalid_client"
    assert "disabled" in refused.json()["detail"]


async def test_scopes_taken_away_elsewhere_count_at_the_next_request(identity: Identity) -> None:
    tax = await enrol_client(identity.app, "tax", SCOPES)
    assert claims(await identity.token(tax))["scope"] == " ".join(SCOPES)

    await identity.sql(
        "UPDATE department_clients SET scopes = ARRAY['exchange:query'] WHERE client_id = :id",
        id=tax.client_id,
    )

    assert claims(await identity.token(tax))["scope"] == "exchange:query"
    refused = await identity.token(tax, scope="exchange:subscribe")
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_scope"


async def test_a_key_replaced_elsewhere_counts_at_the_next_request(identity: Identity) -> None:
    tax = await enrol_client(identity.app, "tax", SCOPES)
    claims(await identity.token(tax))
    new_key = ec.generate_private_key(ec.SECP256R1())
    jwks = {"keys": [{**public_jwk(new_key), "kid": "tax-2", "alg": "ES256", "use": "sig"}]}

    await identity.sql(
        "UPDATE department_clients SET jwks = CAST(:jwks AS jsonb) WHERE client_id = :id",
        jwks=json.dumps(jwks),
        id=tax.client_id,
    )

    old = await identity.token(tax)
    assert old.status_code == 401, old.text
    assert "tax-1" in old.json()["detail"]
    rotated = EnrolledClient(tax.client_id, "tax", "tax-2", new_key)
    assert claims(await identity.token(rotated))["client_id"] == tax.client_id


async def test_a_replayed_assertion_is_refused_when_the_client_is_in_memory(
    identity: Identity,
) -> None:
    tax = await enrol_client(identity.app, "tax", SCOPES)
    endpoint = f"{identity.settings.issuer}/oauth/token"
    form = {"grant_type": "client_credentials", **tax.authentication(endpoint)}

    first = await identity.client.post("/oauth/token", data=form)
    again = await identity.client.post("/oauth/token", data=form)

    assert first.status_code == 200, first.text
    assert again.status_code == 401, again.text
    assert "used already" in again.json()["detail"]


async def test_connections_go_back_to_the_pool_with_transactions_again(identity: Identity) -> None:
    """The grant runs its statement in autocommit; the pool must hand its connections to the
    next request in the usual transactional mode (one transaction: ``now()`` stands still)."""
    tax = await enrol_client(identity.app, "tax", SCOPES)
    for _ in range(5):
        claims(await identity.token(tax))

    for _ in range(5):
        async with identity.app.state.sessionmaker() as session, session.begin():
            first = await session.scalar(text("SELECT now()"))
            await asyncio.sleep(0.005)
            second = await session.scalar(text("SELECT now()"))
        assert first == second


async def test_a_key_added_elsewhere_serves_at_its_first_use(identity: Identity) -> None:
    tax = await enrol_client(identity.app, "tax", SCOPES)
    claims(await identity.token(tax))  # the copy in memory knows tax-1 only
    new_key = ec.generate_private_key(ec.SECP256R1())
    jwks = {"keys": [{**public_jwk(new_key), "kid": "tax-2", "alg": "ES256", "use": "sig"}]}

    await identity.sql(
        "UPDATE department_clients SET jwks = jsonb_set(jwks, '{keys}', jwks->'keys' || "
        "(CAST(:jwks AS jsonb)->'keys')) WHERE client_id = :id",
        jwks=json.dumps(jwks),
        id=tax.client_id,
    )

    rotated = EnrolledClient(tax.client_id, "tax", "tax-2", new_key)
    assert claims(await identity.token(rotated))["client_id"] == tax.client_id
    assert claims(await identity.token(tax))["client_id"] == tax.client_id  # tax-1 still serves


async def test_a_scope_granted_elsewhere_serves_at_its_first_use(identity: Identity) -> None:
    tax = await enrol_client(identity.app, "tax", ["exchange:query"])
    claims(await identity.token(tax))

    await identity.sql(
        "UPDATE department_clients SET scopes = scopes || ARRAY['exchange:subscribe'] "
        "WHERE client_id = :id",
        id=tax.client_id,
    )

    assert claims(await identity.token(tax, scope="exchange:subscribe"))["scope"] == (
        "exchange:subscribe"
    )
