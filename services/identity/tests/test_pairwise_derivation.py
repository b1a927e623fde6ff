"""Deriving pseudonyms from resident ID numbers: a platform service learns the pseudonym a
department knows a person by (the same the department sees), also for someone not registered
yet, whose pseudonym stays the same once they sign up. Never for a department's token."""

from __future__ import annotations

import asyncio
import base64
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import event

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


async def derive_many(
    identity: SignInDriver, items: Any, headers: dict[str, str] | None = None
) -> Any:
    return await identity.client.post(
        "/v1/pairwise/subjects/batch",
        json={"items": items},
        headers=headers or await bearer(identity, DERIVE),
    )


async def test_a_batch_answers_in_order_what_the_single_call_answers(
    identity: SignInDriver,
) -> None:
    await identity.sign_up(REGISTERED)
    pairs = [
        ("social-security", NEWCOMER),
        ("tax", REGISTERED),
        ("health", REGISTERED),
        ("tax", NEWCOMER),
        ("social-security", REGISTERED),
        ("tax", REGISTERED),
    ]

    response = await derive_many(
        identity, [{"department": d, "resident_id": number} for d, number in pairs]
    )

    assert response.status_code == 200, response.text
    assert REGISTERED not in response.text
    assert NEWCOMER not in response.text
    answers = response.json()["pseudonyms"]
    assert [answer["department"] for answer in answers] == [d for d, _ in pairs]
    assert answers[2] == {"department": "health", "pseudonym": None}  # never enrolled
    for (department, number), answer in zip(pairs, answers, strict=True):
        if department == "health":
            continue
        single = await derive(identity, department, number)
        assert answer["pseudonym"] == single.json()["pseudonym"], (department, number)
    assert answers[1]["pseudonym"] == answers[5]["pseudonym"] != answers[4]["pseudonym"]
    assert answers[0]["pseudonym"] != answers[3]["pseudonym"]


async def test_a_batch_refuses_department_tokens_and_bad_input_as_a_problem(
    identity: SignInDriver,
) -> None:
    as_department = await bearer(
        identity, DERIVE, sub="dept-tax-1", client_id="dept-tax-1", department="tax"
    )
    one = [{"department": "tax", "resident_id": NEWCOMER}]
    bad_check = NEWCOMER[:-1] + ("0" if NEWCOMER[-1] != "0" else "1")

    answers = {
        "department token": await derive_many(identity, one, as_department),
        "no scope": await derive_many(identity, one, await bearer(identity, RESOLVE)),
        "empty": await derive_many(identity, []),
        "too many": await derive_many(identity, one * 501),
        "bad number": await derive_many(
            identity, [*one, {"department": "tax", "resident_id": bad_check}]
        ),
        "not a list": await derive_many(identity, {"department": "tax"}),
    }

    expected = {"department token": 403, "no scope": 403}
    for name, response in answers.items():
        assert response.status_code == expected.get(name, 422), name
        assert response.headers["content-type"] == PROBLEM, name
        assert "pseudonyms" not in response.json(), name
        assert NEWCOMER not in response.text, name
        assert bad_check not in response.text, name
    most = await derive_many(identity, one * 500)
    assert most.status_code == 200
    assert len({answer["pseudonym"] for answer in most.json()["pseudonyms"]}) == 1


def mixed_batch(registered: list[str], newcomers: list[str], department: str) -> list[Any]:
    """Registered and unregistered residents, a department never enrolled, repeated pairs."""
    pairs = [(department, number) for number in registered + newcomers]
    pairs += [("health", number) for number in registered[:2]] + pairs[:3]
    return [{"department": d, "resident_id": number} for d, number in pairs]


async def test_a_batch_costs_the_same_statements_for_ten_items_as_for_two_hundred(
    identity: SignInDriver,
) -> None:
    registered = [resident_id(n) for n in range(10, 30)]
    for number in registered:
        await identity.sign_up(number)
    newcomers = [resident_id(n) for n in range(100, 275)]
    headers = await bearer(identity, DERIVE)
    statements: list[str] = []

    def counted(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    async def cost(items: list[Any]) -> int:
        statements.clear()
        response = await derive_many(identity, items, headers)
        assert response.status_code == 200, response.text
        return len(statements)

    event.listen(identity.app.state.engine.sync_engine, "before_cursor_execute", counted)
    try:
        small = mixed_batch(registered[:3], newcomers[:2], "tax")
        large = mixed_batch(registered, newcomers, "social-security")
        first = (await cost(small), await cost(large))  # pseudonyms stored on first use
        again = (await cost(small), await cost(large))
    finally:
        event.remove(identity.app.state.engine.sync_engine, "before_cursor_execute", counted)

    assert (len(small), len(large)) == (10, 200)
    assert first[0] == first[1] <= 4
    assert again[0] == again[1] <= first[0]
    assert await identity.count("pairwise_subjects") == 3 + 20


async def test_a_batch_agrees_with_single_answers_and_stores_what_they_would(
    identity: SignInDriver,
) -> None:
    registered = [resident_id(n) for n in range(10, 16)]
    person_ids = [await identity.sign_up(number) for number in registered]
    newcomers = [resident_id(n) for n in range(100, 104)]
    # Stored under an earlier key: the stored pseudonym outlives the derivation.
    [(earlier,)] = await identity.sql(
        "INSERT INTO pairwise_subjects (department, person_id, pseudonym)"
        " VALUES ('tax', :person, :pseudonym) RETURNING pseudonym",
        person=uuid.UUID(person_ids[0]),
        pseudonym="a" * 32,
    )
    items = mixed_batch(registered, newcomers, "tax") + mixed_batch(
        registered[::-1], newcomers, "social-security"
    )

    batch = await derive_many(identity, items)

    assert batch.status_code == 200, batch.text
    answers = batch.json()["pseudonyms"]
    assert [a["department"] for a in answers] == [item["department"] for item in items]
    assert answers[0]["pseudonym"] == earlier
    for item, answer in zip(items, answers, strict=True):
        single = await derive(identity, item["department"], item["resident_id"])
        expected = None if single.status_code == 404 else single.json()["pseudonym"]
        assert answer["pseudonym"] == expected, item["department"]
    for person_id, number in zip(person_ids, registered, strict=True):
        for department in ("tax", "social-security"):
            by_batch = answers[items.index({"department": department, "resident_id": number})]
            assert by_batch["pseudonym"] == await seen_by(identity, person_id, department)
    assert await identity.count("pairwise_subjects") == 2 * len(registered)


async def test_concurrent_batches_storing_the_same_pairs_agree(identity: SignInDriver) -> None:
    registered = [resident_id(n) for n in range(10, 40)]
    for number in registered:
        await identity.sign_up(number)
    items = [{"department": "tax", "resident_id": number} for number in registered]
    headers = await bearer(identity, DERIVE)

    answers = await asyncio.gather(
        derive_many(identity, items, headers), derive_many(identity, items[::-1], headers)
    )

    assert [response.status_code for response in answers] == [200, 200]
    forward, backward = (response.json()["pseudonyms"] for response in answers)
    assert forward == backward[::-1]
    assert await identity.count("pairwise_subjects") == len(registered)
