"""Pairwise subjects: each department knows a person by a pseudonym of its own, stable and
unlinkable across departments; only holders of identity:pairwise:resolve map them back."""

from __future__ import annotations

import base64
import logging
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from jwt.algorithms import ECAlgorithm
from pydantic import SecretStr, ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tongban_identity.departments import service as departments_service
from tongban_identity.departments.schemas import DepartmentCreate
from tongban_identity.main import create_app
from tongban_identity.pairwise.derivation import Pseudonyms
from tongban_identity.pairwise.service import pseudonym_for
from tongban_identity.settings import IdentitySettings
from tongban_identity.tokens.service import issue_access_token
from tongban_kit.crypto import generate_key_setting
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import running_app

RESOLVE = "identity:pairwise:resolve"
PROBLEM = "application/problem+json"
PSEUDONYM = re.compile(r"[a-z2-7]{32}")


def random_key() -> SecretStr:
    return SecretStr(base64.b64encode(secrets.token_bytes(32)).decode())


@dataclass
class Identity:
    app: FastAPI
    client: httpx.AsyncClient
    settings: IdentitySettings

    async def bearer(self, *scopes: str) -> dict[str, str]:
        async with self.app.state.sessionmaker() as session, session.begin():
            token = await issue_access_token(
                session,
                vault=self.app.state.key_vault,
                issuer=self.settings.issuer,
                subject="exchange-service",
                audience="tongban:440300",
                scope=scopes,
                acr=None,
                amr=(),
                auth_time=None,
                node="440300",
            )
        return {"Authorization": f"Bearer {token}"}

    async def sign_up(self, resident_id: str, phone: str) -> str:
        response = await self.client.post(
            "/v1/persons",
            json={
                "resident_id": resident_id,
                "name": "王小明",
                "phone": phone,
                "password": "correct horse battery staple",
            },
        )
        assert response.status_code == 201, response.text
        person_id: str = response.json()["id"]
        return person_id

    async def enrol(self, code: str) -> None:
        jwk = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key(), as_dict=True)
        enrolment = DepartmentCreate(
            code=code,
            name=f"{code} bureau",
            scopes=["exchange:subscribe"],
            jwks={"keys": [{**jwk, "kid": f"{code}-1"}]},
        )
        async with self.app.state.sessionmaker() as session, session.begin():
            await departments_service.create_department(session, enrolment=enrolment, node="440300")

    async def pseudonym(self, person_id: str, department: str) -> httpx.Response:
        return await self.client.get(
            f"/v1/persons/{person_id}/pairwise/{department}", headers=await self.bearer(RESOLVE)
        )

    async def resolve(self, department: str, pseudonym: str) -> httpx.Response:
        return await self.client.get(
            f"/v1/pairwise/{department}/{pseudonym}", headers=await self.bearer(RESOLVE)
        )

    async def stored(self) -> list[tuple[Any, ...]]:
        engine = create_async_engine(self.settings.database_url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text("SELECT department, person_id, pseudonym FROM pairwise_subjects")
                )
                return [tuple(row) for row in rows]
        finally:
            await engine.dispose()


@pytest.fixture
async def database(make_database) -> str:  # type: ignore[no-untyped-def]
    url: str = await make_database("tongban_identity:migrations")
    return url


@pytest.fixture
async def identity(database: str, node_settings: NodeSettings) -> AsyncIterator[Identity]:
    settings = IdentitySettings(
        database_url=database, node=node_settings, run_workers=False, pairwise_key=random_key()
    )
    app = create_app(settings)
    async with running_app(app) as client:
        identity = Identity(app, client, settings)
        await identity.enrol("tax")
        await identity.enrol("social-security")
        yield identity


@pytest.fixture
async def person(identity: Identity) -> str:
    return await identity.sign_up("11010519491231002X", "13812345678")


async def test_two_departments_see_different_stable_pseudonyms_for_the_same_person(
    identity: Identity, person: str
) -> None:
    tax = [(await identity.pseudonym(person, "tax")).json()["pseudonym"] for _ in range(2)]
    social = [
        (await identity.pseudonym(person, "social-security")).json()["pseudonym"] for _ in range(2)
    ]

    assert tax[0] == tax[1]
    assert social[0] == social[1]
    assert tax[0] != social[0]
    assert PSEUDONYM.fullmatch(tax[0])
    assert PSEUDONYM.fullmatch(social[0])


async def test_one_department_sees_two_persons_under_different_pseudonyms(
    identity: Identity, person: str
) -> None:
    other = await identity.sign_up("44030519900101123X", "13900000000")

    first = (await identity.pseudonym(person, "tax")).json()["pseudonym"]
    second = (await identity.pseudonym(other, "tax")).json()["pseudonym"]

    assert first != second


async def test_a_pseudonym_resolves_back_to_its_person(identity: Identity, person: str) -> None:
    pseudonym = (await identity.pseudonym(person, "tax")).json()["pseudonym"]

    response = await identity.resolve("tax", pseudonym)

    assert response.status_code == 200
    assert response.json() == {"department": "tax", "pseudonym": pseudonym, "person_id": person}


async def test_a_pseudonym_means_nothing_to_another_department(
    identity: Identity, person: str
) -> None:
    pseudonym = (await identity.pseudonym(person, "tax")).json()["pseudonym"]

    response = await identity.resolve("social-security", pseudonym)

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert pseudonym not in response.json()["detail"]


@pytest.mark.parametrize("path", ["/v1/persons/{person}/pairwise/tax", "/v1/pairwise/tax/{fake}"])
@pytest.mark.parametrize(("scopes", "status"), [(None, 401), (("exchange:subscribe",), 403)])
async def test_pseudonyms_need_the_resolve_scope(
    identity: Identity, person: str, path: str, scopes: tuple[str, ...] | None, status: int
) -> None:
    headers = await identity.bearer(*scopes) if scopes is not None else {}

    response = await identity.client.get(path.format(person=person, fake="a" * 32), headers=headers)

    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    assert await identity.stored() == []


async def test_an_unknown_person_or_department_is_a_404_and_writes_nothing(
    identity: Identity, person: str
) -> None:
    unknown_person = await identity.pseudonym(str(uuid.uuid4()), "tax")
    unknown_department = await identity.pseudonym(person, "health")

    assert unknown_person.status_code == unknown_department.status_code == 404
    assert await identity.stored() == []


@pytest.mark.parametrize(
    "path",
    [
        "/v1/pairwise/tax/NOT-BASE32",
        "/v1/pairwise/tax/" + "a" * 33,
        "/v1/pairwise/Tax/" + "a" * 32,
        "/v1/persons/not-a-uuid/pairwise/tax",
    ],
)
async def test_malformed_paths_are_422_problems(identity: Identity, path: str) -> None:
    response = await identity.client.get(path, headers=await identity.bearer(RESOLVE))

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_pseudonym_for_stores_the_pseudonym_once(identity: Identity, person: str) -> None:
    async with identity.app.state.sessionmaker() as session, session.begin():
        first = await pseudonym_for(
            session,
            person_id=uuid.UUID(person),
            department="tax",
            pseudonyms=identity.app.state.pseudonyms,
        )
    async with identity.app.state.sessionmaker() as session, session.begin():
        second = await pseudonym_for(
            session,
            person_id=uuid.UUID(person),
            department="tax",
            pseudonyms=identity.app.state.pseudonyms,
        )

    assert first == second
    assert await identity.stored() == [("tax", uuid.UUID(person), first)]


async def test_a_pseudonym_handed_out_survives_a_new_pairwise_key(
    identity: Identity, person: str, database: str, node_settings: NodeSettings
) -> None:
    before = (await identity.pseudonym(person, "tax")).json()["pseudonym"]
    rekeyed = IdentitySettings(
        database_url=database, node=node_settings, run_workers=False, pairwise_key=random_key()
    )

    app = create_app(rekeyed)
    async with running_app(app) as client:
        after = (await Identity(app, client, rekeyed).pseudonym(person, "tax")).json()

    assert after["pseudonym"] == before


def test_pseudonyms_depend_on_the_key() -> None:
    person = uuid.uuid4()

    one = Pseudonyms(secrets.token_bytes(32)).derive(department="tax", person_id=person)
    other = Pseudonyms(secrets.token_bytes(32)).derive(department="tax", person_id=person)

    assert one != other
    assert PSEUDONYM.fullmatch(one)
    assert person.hex[:8] not in one


def production(**values: Any) -> IdentitySettings:
    return IdentitySettings(
        node=NodeSettings(environment="production"),
        key_encryption_key=SecretStr(generate_key_setting("k1")),
        pii_keys=SecretStr(generate_key_setting("p1")),
        blind_index_key=random_key(),
        **values,
    )


def test_production_refuses_to_start_without_a_pairwise_key() -> None:
    with pytest.raises(ValidationError, match="TONGBAN_IDENTITY_PAIRWISE_KEY is required"):
        production()


def test_production_accepts_a_random_pairwise_key() -> None:
    assert production(pairwise_key=random_key()).pairwise_key is not None


@pytest.mark.parametrize("value", ["c2hvcnQ=", "not base64 at all!"])
def test_a_weak_or_malformed_pairwise_key_is_refused_without_echoing_it(value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        IdentitySettings(pairwise_key=SecretStr(value))

    assert value not in str(refused.value)


def test_development_without_a_pairwise_key_warns_that_pseudonyms_are_linkable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="tongban.identity.pairwise"):
        Pseudonyms.from_settings(None).derive(department="tax", person_id=uuid.uuid4())

    assert "TONGBAN_IDENTITY_PAIRWISE_KEY is unset" in caplog.text
