"""Deriving pseudonyms from resident ID numbers: a platform service learns the pseudonym a
department knows a person by (the same the department sees), also for someone not registered
yet, whose pseudonym stays the same once they sign up. Never for a department's token."""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from tongban_identity.departments.testing import enrol_client
from tongban_identity.sessions.testing import SignInDriver, resident_id, running_identity
from tongban_identity.tokens.service import issue_access_token
from tongban_kit.settings import NodeSettings

DERIVE = "identity:pairwise:derive"
RESOLVE = "identity:pairwise:resolve"
PROBLEM = "application/problem+json"
REGISTERED = resident_id(2)
NEWCOMER = resident_id(3)


@pytest.fixture
async def identity(make_database, node_settings: NodeSettings) -> AsyncIterator[SignInDriver]:  # type: ignore[no-untyped-def]
    url = await make_database("tongban_identity:migrations")
    key = SecretStr(base64.b64encode(secrets.token_bytes(32)).decode())
    async with running_identity(url, node_settings, run_workers=False, pairwise_key=key) as driver:
        await enrol_client(driver.app, "tax", ["exchange:query"])
        await enrol_client(driver.app, "social-security", ["exchange:query"])
        yield driver


async def bearer(identity: SignInDriver, *scopes: str, **claims: Any) -> dict[str, str]:
    settings = identity.settings
    async with identity.app.state.sessionmaker() as session, session.begin():
        token = await issue_access_token(
            session,
            vault=identity.app.state.key_vault,
            issuer=settings.issuer,
            subject=claims.pop("sub", "svc-data-exchange"),
            audience=settings.token_audience,
            scope=scopes,
            acr=None,
            amr=(),
            auth_time=None,
            node=settings.node.node_code,
            extra_claims=claims or None,
        )
    return {"Authorization": f"Bearer {token}"}


async def derive(
    identity: SignInDriver, department: str, number: str, headers: dict[str, str] | None = None
) -> Any:
    response = await identity.client.post(
        "/v1/pairwise/subjects",
        json={"department": department, "resident_id": number},
        headers=headers or await bearer(identity, DERIVE),
    )
    return response


async def seen_by(identity: SignInDriver, person_id: str, department: str) -> str:
    response = await identity.client.get(
        f"/v1/persons/{person_id}/pairwise/{department}", headers=await bearer(identity, RESOLVE)
    )
    assert response.status_code == 200, response.text
    pseudonym: str = response.json()["pseudonym"]
    return pseudonym


async def test_a_registered_person_gets_what_the_department_sees(identity: SignInDriver) -> None:
    person_id = await identity.sign_up(REGISTERED)

    derived = await derive(identity, "tax", REGISTERED)

    assert derived.status_code == 200
    assert derived.json() == {"department": "tax", "pseudonym": derived.json()["pseudonym"]}
    assert REGISTERED not in derived.text
    assert derived.json()["pseudonym"] == await seen_by(identity, person_id, "tax")
    other = (await derive(identity, "social-security", REGISTERED)).json()["pseudonym"]
    assert other == await seen_by(identity, person_id, "social-security")
    assert other != derived.json()["pseudonym"]


async def test_someone_not_registered_keeps_their_pseudonym_once_they_sign_up(
    identity: SignInDriver,
) -> None:
    first = (await derive(identity, "tax", NEWCOMER)).json()["pseudonym"]
    second = (await derive(identity, "tax", NEWCOMER)).json()["pseudonym"]
    elsewhere = (await derive(identity, "social-security", NEWCOMER)).json()["pseudonym"]
    assert await identity.count("pairwise_subjects") == 0

    person_id = await identity.sign_up(NEWCOMER)

    assert first == second != elsewhere
    assert await seen_by(identity, person_id, "tax") == first
    assert (await derive(identity, "tax", NEWCOMER)).json()["pseudonym"] == first


async def test_department_tokens_and_tokens_without_the_scope_are_refused(
    identity: SignInDriver,
) -> None:
    as_department = await bearer(
        identity, DERIVE, sub="dept-tax-1", client_id="dept-tax-1", department="tax"
    )
    as_service_account = await bearer(
        identity, DERIVE, sub="svc-data-exchange", client_id="svc-x", department="svc-data-exchange"
    )

    department = await derive(identity, "tax", NEWCOMER, as_department)
    no_scope = await derive(identity, "tax", NEWCOMER, await bearer(identity, RESOLVE))
    no_token = await identity.client.post(
        "/v1/pairwise/subjects", json={"department": "tax", "resident_id": NEWCOMER}
    )
    service_account = await derive(identity, "tax", NEWCOMER, as_service_account)

    assert (department.status_code, no_scope.status_code, no_token.status_code) == (403, 403, 401)
    for response in (department, no_scope, no_token):
        assert response.headers["content-type"] == PROBLEM
        assert "pseudonym" not in response.json()
    assert service_account.status_code == 200


async def test_bad_input_is_a_problem_and_writes_nothing(identity: SignInDriver) -> None:
    await identity.sign_up(REGISTERED)
    bad_check = REGISTERED[:-1] + ("0" if REGISTERED[-1] != "0" else "1")
    headers = await bearer(identity, DERIVE)

    answers = {
        "checksum": await derive(identity, "tax", bad_check),
        "future birth": await derive(identity, "tax", resident_id(5, birth="29991231")),
        "department": await derive(identity, "Tax!", REGISTERED),
        "unknown department": await derive(identity, "health", REGISTERED),
        "extra": await identity.client.post(
            "/v1/pairwise/subjects",
            json={"department": "tax", "resident_id": REGISTERED, "person_id": str(uuid.uuid4())},
            headers=headers,
        ),
        "malformed": await identity.client.post(
            "/v1/pairwise/subjects",
            content=b"[",
            headers={**headers, "content-type": "application/json"},
        ),
    }

    expected = {"unknown department": 404, "malformed": 400}
    for name, response in answers.items():
        assert response.status_code == expected.get(name, 422), name
        assert response.headers["content-type"] == PROBLEM, name
        assert REGISTERED not in response.text
        assert bad_check not in response.text
    assert await identity.count("pairwise_subjects") == 0
