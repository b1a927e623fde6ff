"""Operators enrol departments over the admin API: only with the admin scope, with public keys
only, one enabled client per department, an event for each enrolment; bad input writes
nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from jwt.algorithms import ECAlgorithm
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tongban_identity.main import create_app
from tongban_identity.settings import IdentitySettings
from tongban_identity.tokens.service import issue_access_token
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import EventProbe, assert_valid_event, running_app

AUDIENCE = "tongban:440300"
PROBLEM = "application/problem+json"
TAX_NAME = "国家税务总局深圳市税务局"


@dataclass
class Identity:
    app: FastAPI
    client: httpx.AsyncClient
    settings: IdentitySettings

    async def token(self, *scopes: str) -> str:
        async with self.app.state.sessionmaker() as session, session.begin():
            return await issue_access_token(
                session,
                vault=self.app.state.key_vault,
                issuer=self.settings.issuer,
                subject="operator-1",
                audience=AUDIENCE,
                scope=scopes,
                acr="high",
                amr=["pwd", "otp"],
                auth_time=datetime.now(UTC),
                node="440300",
            )

    async def as_operator(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token('tongban:admin')}"}

    async def enrol(self, **overrides: Any) -> httpx.Response:
        return await self.client.post(
            "/v1/admin/departments", json=enrolment(**overrides), headers=await self.as_operator()
        )

    async def rows(self) -> list[dict[str, Any]]:
        engine = create_async_engine(self.settings.database_url)
        try:
            async with engine.connect() as conn:
                result = await conn.execute(text("SELECT * FROM department_clients"))
                return [dict(row._mapping) for row in result]
        finally:
            await engine.dispose()


def public_jwk(kid: str = "tax-2026") -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    return {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid}


def private_jwk(kid: str = "tax-2026") -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    return {**ECAlgorithm.to_jwk(key, as_dict=True), "kid": kid}


def enrolment(**overrides: Any) -> dict[str, Any]:
    body = {
        "code": "tax",
        "name": TAX_NAME,
        "scopes": ["exchange:subscribe", "exchange:query"],
        "jwks": {"keys": [public_jwk()]},
    }
    body.update(overrides)
    return body


@pytest.fixture
async def identity(make_database, node_settings: NodeSettings) -> AsyncIterator[Identity]:  # type: ignore[no-untyped-def]
    url = await make_database("tongban_identity:migrations")
    settings = IdentitySettings(database_url=url, node=node_settings, run_workers=False)
    app = create_app(settings)
    async with running_app(app) as client:
        yield Identity(app, client, settings)


async def test_enrolling_needs_a_bearer_token(identity: Identity) -> None:
    response = await identity.client.post("/v1/admin/departments", json=enrolment())

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert await identity.rows() == []


async def test_enrolling_needs_the_admin_scope(identity: Identity) -> None:
    token = await identity.token("identity:pairwise:resolve")

    response = await identity.client.post(
        "/v1/admin/departments", json=enrolment(), headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert await identity.rows() == []


async def test_a_token_with_a_forged_signature_is_refused(identity: Identity) -> None:
    forged = await identity.token("tongban:admin")
    header, payload, _ = forged.split(".")

    response = await identity.client.get(
        "/v1/admin/departments",
        headers={"Authorization": f"Bearer {header}.{payload}.c2lnbmF0dXJl"},
    )

    assert response.status_code == 401


async def test_an_operator_enrols_a_department_and_gets_its_client_id(identity: Identity) -> None:
    jwk = public_jwk()

    response = await identity.enrol(jwks={"keys": [jwk]})

    assert response.status_code == 201, response.text
    body = response.json()
    assert re.fullmatch(r"dept-tax-[0-9a-f]{12}", body["client_id"])
    assert response.headers["location"] == f"/v1/admin/departments/{body['client_id']}"
    assert (body["code"], body["name"], body["node"]) == ("tax", TAX_NAME, "440300")
    assert body["scopes"] == ["exchange:subscribe", "exchange:query"]
    assert body["jwks"] == {"keys": [{**jwk, "alg": "ES256", "use": "sig"}]}
    assert body["disabled_at"] is None
    (row,) = await identity.rows()
    assert row["client_id"] == body["client_id"]


async def test_an_operator_reads_one_department(identity: Identity) -> None:
    client_id = (await identity.enrol()).json()["client_id"]

    response = await identity.client.get(
        f"/v1/admin/departments/{client_id}", headers=await identity.as_operator()
    )

    assert response.status_code == 200
    assert response.json()["client_id"] == client_id


async def test_the_list_shows_enabled_departments_and_disabled_ones_when_asked(
    identity: Identity,
) -> None:
    tax = (await identity.enrol()).json()["client_id"]
    stats = (await identity.enrol(code="statistics", name="深圳市统计局")).json()["client_id"]
    operator = await identity.as_operator()
    await identity.client.post(f"/v1/admin/departments/{stats}/disable", headers=operator)

    enabled = await identity.client.get("/v1/admin/departments", headers=operator)
    everyone = await identity.client.get(
        "/v1/admin/departments", params={"include_disabled": "true"}, headers=operator
    )

    assert [d["client_id"] for d in enabled.json()["items"]] == [tax]
    assert [d["client_id"] for d in everyone.json()["items"]] == [stats, tax]


async def test_disabling_twice_keeps_the_first_time(identity: Identity) -> None:
    client_id = (await identity.enrol()).json()["client_id"]
    operator = await identity.as_operator()

    first = await identity.client.post(
        f"/v1/admin/departments/{client_id}/disable", headers=operator
    )
    again = await identity.client.post(
        f"/v1/admin/departments/{client_id}/disable", headers=operator
    )

    assert first.status_code == again.status_code == 200
    assert first.json()["disabled_at"] is not None
    assert again.json()["disabled_at"] == first.json()["disabled_at"]


async def test_disabling_an_unknown_client_is_a_404_problem(identity: Identity) -> None:
    response = await identity.client.post(
        "/v1/admin/departments/dept-tax-000000000000/disable", headers=await identity.as_operator()
    )

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


async def test_a_department_has_one_enabled_client_at_a_time(identity: Identity) -> None:
    first = (await identity.enrol()).json()["client_id"]

    second = await identity.enrol()
    await identity.client.post(
        f"/v1/admin/departments/{first}/disable", headers=await identity.as_operator()
    )
    after_disabling = await identity.enrol()

    assert second.status_code == 409
    assert second.headers["content-type"] == PROBLEM
    assert after_disabling.status_code == 201
    assert after_disabling.json()["client_id"] != first
    assert len(await identity.rows()) == 2


@pytest.mark.parametrize(
    "overrides",
    [
        {"code": "Tax"},
        {"code": "t"},
        {"code": "-tax"},
        {"code": "tax/../admin"},
        {"name": ""},
        {"scopes": []},
        {"scopes": ["exchange:subscribe exchange:query"]},
        {"scopes": ['exchange:"query"']},
        {"scopes": ["tongban:admin"]},
        {"scopes": ["exchange:subscribe", "identity:pairwise:resolve"]},
        {"jwks": {}},
        {"jwks": {"keys": []}},
        {"jwks": {"keys": [public_jwk(kid=f"k{n}") for n in range(6)]}},
        {"jwks": {"keys": [public_jwk(), public_jwk()]}},  # one kid twice
        {"jwks": {"keys": [{**public_jwk(), "alg": "HS256"}]}},
        {"jwks": {"keys": [{**public_jwk(), "use": "enc"}]}},
        {"jwks": {"keys": [{**public_jwk(), "kid": ""}]}},
        {"jwks": {"keys": [{**public_jwk(), "x": "AAAA"}]}},  # not a point on the curve
        {"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}]}},
        {"jwks": {"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "rsa"}]}},
        {"unexpected": "field"},
    ],
)
async def test_bad_enrolments_are_422_problems_and_write_nothing(
    identity: Identity, overrides: dict[str, Any]
) -> None:
    response = await identity.enrol(**overrides)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert await identity.rows() == []


async def test_a_private_key_is_refused_and_not_echoed(identity: Identity) -> None:
    leaked = private_jwk()

    response = await identity.enrol(jwks={"keys": [leaked]})

    assert response.status_code == 422
    assert "private key material" in response.text
    assert leaked["d"] not in response.text
    assert await identity.rows() == []


async def test_malformed_json_is_a_400_problem(identity: Identity) -> None:
    response = await identity.client.post(
        "/v1/admin/departments",
        content=b'{"code": "tax",',
        headers={**await identity.as_operator(), "content-type": "application/json"},
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert await identity.rows() == []


async def test_an_enrolment_is_announced_without_key_material(
    make_database,  # type: ignore[no-untyped-def]
    node_settings: NodeSettings,
) -> None:
    url = await make_database("tongban_identity:migrations")
    settings = IdentitySettings(database_url=url, node=node_settings)
    app = create_app(settings)
    async with running_app(app) as client:
        identity = Identity(app, client, settings)
        jwk = public_jwk()
        client_id = (await identity.enrol(jwks={"keys": [jwk]})).json()["client_id"]

        async with EventProbe(node_settings, "identity.events") as probe:
            (event,) = await probe.collect(lambda seen: len(seen) >= 1)

    assert_valid_event(event)
    assert event.type == "gov.tongban.identity.department.created.v1"
    assert event.subject == client_id
    assert event.source == "/nodes/440300/identity"
    assert event.data["code"] == "tax"
    assert event.data["scopes"] == ["exchange:subscribe", "exchange:query"]
    assert jwk["x"] not in event.to_kafka().value.decode()
