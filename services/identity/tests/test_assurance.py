"""Levels of assurance go up by proof and never down: `substantial` on an authoritative record
confirmed by a holder of `identity:assurance`, `high` by signing a one-time challenge with a key
registered at `substantial`. Each raise is an event that names no personal data."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tongban_identity.main import create_app
from tongban_identity.models import Person
from tongban_identity.settings import IdentitySettings
from tongban_identity.signatures.testing import (
    PrivateKey,
    mint_token,
    public_jwk,
    sign_detached,
)
from tongban_kit.auth import AssuranceLevel
from tongban_kit.events import CloudEvent
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import assert_valid_event, running_app

PROBLEM = "application/problem+json"
RAISED = "gov.tongban.identity.person.assurance_raised.v1"
NAME = "王小明"


def sign_challenge(
    key: PrivateKey, challenge: str, *, kid: str, typ: str = "tongban-challenge+jws"
) -> str:
    """Detached JWS, unencoded payload: the challenge string itself is what is signed."""
    return sign_detached(key, challenge, kid=kid, typ=typ)


@dataclass
class Identity:
    app: FastAPI
    client: httpx.AsyncClient
    settings: IdentitySettings

    async def token(
        self, *scopes: str, subject: str = "public-security", acr: AssuranceLevel | None = None
    ) -> str:
        return await mint_token(self.app, *scopes, subject=subject, acr=acr)

    async def person(self, loa: AssuranceLevel = "low") -> SignedIn:
        async with self.app.state.sessionmaker() as session, session.begin():
            person = Person(name=NAME, node=self.settings.node.node_code, loa=loa)
            session.add(person)
            await session.flush()
            person_id = person.id
        signed_in = SignedIn(self, person_id, {})
        await signed_in.sign_in()
        return signed_in

    async def confirm(self, person_id: uuid.UUID, **body: str) -> httpx.Response:
        token = await self.token("identity:assurance")
        return await self.client.post(
            f"/v1/persons/{person_id}/assurance/substantial",
            json=body or {"source": "household-register"},
            headers={"Authorization": f"Bearer {token}"},
        )

    async def sql(self, statement: str, **params: object) -> list[tuple[Any, ...]]:
        engine = create_async_engine(self.settings.database_url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(statement), params)
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    async def loa(self, person_id: uuid.UUID) -> str:
        [(loa,)] = await self.sql("SELECT loa FROM persons WHERE id = :id", id=person_id)
        return str(loa)

    async def events(self) -> list[CloudEvent]:
        rows = await self.sql(
            "SELECT key, payload, headers FROM tongban_outbox WHERE event_type = :type "
            "ORDER BY seq",
            type=RAISED,
        )
        return [
            CloudEvent.from_kafka(
                bytes(key), bytes(payload), [(n, v.encode()) for n, v in headers.items()]
            )
            for key, payload, headers in rows
        ]


@dataclass
class SignedIn:
    identity: Identity
    id: uuid.UUID
    auth: dict[str, str]

    async def sign_in(self) -> None:
        """A new access token at the person's current level (as login would issue it)."""
        loa = await self.identity.loa(self.id)
        token = await self.identity.token("openid", subject=str(self.id), acr=loa)  # type: ignore[arg-type]
        self.auth = {"Authorization": f"Bearer {token}"}

    async def register(self, key: PrivateKey) -> dict[str, Any]:
        response = await self.identity.client.post(
            "/v1/me/keys", json={"jwk": public_jwk(key)}, headers=self.auth
        )
        assert response.status_code == 201, response.text
        registered: dict[str, Any] = response.json()
        return registered

    async def challenge(self) -> dict[str, Any]:
        response = await self.identity.client.post("/v1/me/assurance/challenge", headers=self.auth)
        assert response.status_code == 201, response.text
        challenge: dict[str, Any] = response.json()
        return challenge

    async def prove(self, challenge: dict[str, Any], jws: str) -> httpx.Response:
        return await self.identity.client.post(
            "/v1/me/assurance/high",
            json={"challenge_id": challenge["challenge_id"], "jws": jws},
            headers=self.auth,
        )


@pytest.fixture
async def identity(make_database, node_settings: NodeSettings) -> AsyncIterator[Identity]:  # type: ignore[no-untyped-def]
    url = await make_database("tongban_identity:migrations")
    settings = IdentitySettings(database_url=url, node=node_settings, run_workers=False)
    app = create_app(settings)
    async with running_app(app) as client:
        yield Identity(app, client, settings)


async def substantial_with_key(identity: Identity) -> tuple[SignedIn, PrivateKey, str]:
    """A person confirmed at substantial, signed in again, with a key registered then."""
    person = await identity.person("substantial")
    key = ec.generate_private_key(ec.SECP256R1())
    kid = (await person.register(key))["kid"]
    return person, key, kid


# --- substantial --------------------------------------------------------------------------


async def test_a_department_confirms_a_person_to_substantial_and_it_is_evented(
    identity: Identity,
) -> None:
    person = await identity.person()

    response = await identity.confirm(person.id)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "person_id": str(person.id),
        "loa": "substantial",
        "previous_loa": "low",
        "raised": True,
    }
    assert await identity.loa(person.id) == "substantial"
    (event,) = await identity.events()
    assert_valid_event(event)
    assert event.subject == str(person.id)
    assert event.data == {
        "person_id": str(person.id),
        "node": identity.settings.node.node_code,
        "level": "substantial",
        "previous_level": "low",
        "method": "authoritative-record",
        "source": "household-register",
        "confirmed_by": "public-security",
        "raised_at": event.data["raised_at"],
    }
    assert NAME not in json.dumps(event.data, ensure_ascii=False)


@pytest.mark.parametrize("level", ["substantial", "high"])
async def test_confirming_substantial_never_lowers_or_repeats_a_level(
    identity: Identity, level: AssuranceLevel
) -> None:
    person = await identity.person(level)

    response = await identity.confirm(person.id)

    assert response.status_code == 200
    assert (response.json()["loa"], response.json()["raised"]) == (level, False)
    assert await identity.loa(person.id) == level
    assert await identity.events() == []


async def test_confirming_substantial_needs_the_identity_assurance_scope(
    identity: Identity,
) -> None:
    person = await identity.person()
    url = f"/v1/persons/{person.id}/assurance/substantial"
    body = {"source": "household-register"}
    department = await identity.token("identity:sign")

    anonymous = await identity.client.post(url, json=body)
    unscoped = await identity.client.post(
        url, json=body, headers={"Authorization": f"Bearer {department}"}
    )
    themself = await identity.client.post(url, json=body, headers=person.auth)

    assert [r.status_code for r in (anonymous, unscoped, themself)] == [401, 403, 403]
    assert await identity.loa(person.id) == "low"
    assert await identity.events() == []


@pytest.mark.parametrize(
    "body", ['{"source": ', '{"source": "Household Register"}', "{}", '{"source": "x", "y": 1}']
)
async def test_a_bad_confirmation_is_a_problem_and_changes_nothing(
    identity: Identity, body: str
) -> None:
    person = await identity.person()
    token = await identity.token("identity:assurance")

    response = await identity.client.post(
        f"/v1/persons/{person.id}/assurance/substantial",
        content=body,
        headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
    )

    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == PROBLEM
    assert await identity.loa(person.id) == "low"


async def test_confirming_an_unknown_person_is_not_found(identity: Identity) -> None:
    response = await identity.confirm(uuid.uuid4())

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


# --- high ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_key",
    [lambda: ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate],
    ids=["p256", "ed25519"],
)
async def test_signing_a_challenge_with_a_key_registered_at_substantial_raises_to_high(
    identity: Identity, make_key: Any
) -> None:
    person = await identity.person("substantial")
    key = make_key()
    kid = (await person.register(key))["kid"]
    challenge = await person.challenge()

    response = await person.prove(challenge, sign_challenge(key, challenge["challenge"], kid=kid))

    assert response.status_code == 200, response.text
    assert response.json() == {
        "person_id": str(person.id),
        "loa": "high",
        "previous_loa": "substantial",
        "raised": True,
    }
    assert await identity.loa(person.id) == "high"
    (event,) = await identity.events()
    assert_valid_event(event)
    assert (event.data["level"], event.data["method"]) == ("high", "key-possession")
    assert "source" not in event.data
    assert "confirmed_by" not in event.data


async def test_a_challenge_is_random_and_good_for_two_minutes(identity: Identity) -> None:
    person, _, _ = await substantial_with_key(identity)

    challenge = await person.challenge()

    expires_at = datetime.fromisoformat(challenge["expires_at"])
    assert timedelta(seconds=110) < expires_at - datetime.now(UTC) <= timedelta(seconds=120)
    assert len(challenge["challenge"]) >= 43


async def test_a_used_challenge_is_refused(identity: Identity) -> None:
    person, key, kid = await substantial_with_key(identity)
    challenge = await person.challenge()
    jws = sign_challenge(key, challenge["challenge"], kid=kid)
    await person.prove(challenge, jws)

    replay = await person.prove(challenge, jws)

    assert replay.status_code == 409
    assert replay.headers["content-type"] == PROBLEM
    assert "used" in replay.json()["detail"]
    assert len(await identity.events()) == 1


async def test_an_expired_challenge_is_refused(identity: Identity) -> None:
    person, key, kid = await substantial_with_key(identity)
    challenge = await person.challenge()
    await identity.sql(
        "UPDATE assurance_challenges SET expires_at = now() - interval '1 second' WHERE id = :id",
        id=uuid.UUID(challenge["challenge_id"]),
    )

    response = await person.prove(challenge, sign_challenge(key, challenge["challenge"], kid=kid))

    assert response.status_code == 409
    assert "expired" in response.json()["detail"]
    assert await identity.loa(person.id) == "substantial"


async def test_a_challenge_serves_only_the_person_it_was_made_for(identity: Identity) -> None:
    owner = await identity.person("substantial")
    other, key, kid = await substantial_with_key(identity)
    challenge = await owner.challenge()

    response = await other.prove(challenge, sign_challenge(key, challenge["challenge"], kid=kid))

    assert response.status_code == 404
    assert await identity.loa(other.id) == "substantial"


async def test_a_wrong_signature_is_refused_and_leaves_the_challenge_usable(
    identity: Identity,
) -> None:
    person, key, kid = await substantial_with_key(identity)
    challenge = await person.challenge()

    wrong_payload = await person.prove(challenge, sign_challenge(key, "something else", kid=kid))
    wrong_type = await person.prove(
        challenge, sign_challenge(key, challenge["challenge"], kid=kid, typ="tongban-document+jws")
    )
    stranger = ec.generate_private_key(ec.SECP256R1())
    wrong_key = await person.prove(
        challenge, sign_challenge(stranger, challenge["challenge"], kid=kid)
    )
    right = await person.prove(challenge, sign_challenge(key, challenge["challenge"], kid=kid))

    for refused in (wrong_payload, wrong_type, wrong_key):
        assert refused.status_code == 400
        assert refused.json()["type"].endswith("/invalid-signature")
    assert right.status_code == 200


async def test_high_needs_substantial_first(identity: Identity) -> None:
    person = await identity.person("low")
    key = ed25519.Ed25519PrivateKey.generate()
    kid = (await person.register(key))["kid"]
    challenge = await person.challenge()

    response = await person.prove(challenge, sign_challenge(key, challenge["challenge"], kid=kid))

    assert response.status_code == 409
    assert "substantial" in response.json()["detail"]
    assert await identity.loa(person.id) == "low"
    assert await identity.events() == []


async def test_a_key_registered_before_the_person_was_confirmed_cannot_prove_high(
    identity: Identity,
) -> None:
    person = await identity.person("low")
    early_key = ec.generate_private_key(ec.SECP256R1())
    early_kid = (await person.register(early_key))["kid"]
    await identity.confirm(person.id)
    await person.sign_in()
    challenge = await person.challenge()

    response = await person.prove(
        challenge, sign_challenge(early_key, challenge["challenge"], kid=early_kid)
    )

    assert response.status_code == 400
    assert "registered by a sign-in below level substantial" in response.json()["detail"]
    assert await identity.loa(person.id) == "substantial"


async def test_a_revoked_key_cannot_prove_high(identity: Identity) -> None:
    person = await identity.person("substantial")
    key = ec.generate_private_key(ec.SECP256R1())
    registered = await person.register(key)
    await identity.client.delete(f"/v1/me/keys/{registered['id']}", headers=person.auth)
    challenge = await person.challenge()

    response = await person.prove(
        challenge, sign_challenge(key, challenge["challenge"], kid=registered["kid"])
    )

    assert response.status_code == 400
    assert await identity.loa(person.id) == "substantial"


async def test_a_person_at_high_stays_high_without_a_new_event(identity: Identity) -> None:
    person = await identity.person("high")
    key = ed25519.Ed25519PrivateKey.generate()
    kid = (await person.register(key))["kid"]
    challenge = await person.challenge()

    response = await person.prove(challenge, sign_challenge(key, challenge["challenge"], kid=kid))

    assert (response.json()["loa"], response.json()["raised"]) == ("high", False)
    assert await identity.events() == []


async def test_a_person_holds_at_most_five_open_challenges(identity: Identity) -> None:
    person = await identity.person()
    for _ in range(5):
        await person.challenge()

    response = await identity.client.post("/v1/me/assurance/challenge", headers=person.auth)

    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM


async def test_assurance_endpoints_need_a_persons_own_token(identity: Identity) -> None:
    department = {"Authorization": f"Bearer {await identity.token('identity:assurance')}"}
    body = {"challenge_id": str(uuid.uuid4()), "jws": "a..b"}

    responses = [
        await identity.client.post("/v1/me/assurance/challenge"),
        await identity.client.post("/v1/me/assurance/challenge", headers=department),
        await identity.client.post("/v1/me/assurance/high", json=body),
        await identity.client.post("/v1/me/assurance/high", json=body, headers=department),
    ]

    assert [r.status_code for r in responses] == [401, 403, 401, 403]
    assert await identity.sql("SELECT count(*) FROM assurance_challenges") == [(0,)]


@pytest.mark.parametrize(
    "body",
    [
        '{"challenge_id": ',
        '{"challenge_id": "not-a-uuid", "jws": "a..b"}',
        '{"challenge_id": "00000000-0000-0000-0000-000000000000"}',
        '{"challenge_id": "00000000-0000-0000-0000-000000000000", "jws": "' + "a" * 3000 + '"}',
    ],
    ids=["malformed-json", "bad-id", "no-jws", "oversized-jws"],
)
async def test_a_bad_proof_request_is_a_problem_and_changes_nothing(
    identity: Identity, body: str
) -> None:
    person = await identity.person("substantial")

    response = await identity.client.post(
        "/v1/me/assurance/high",
        content=body,
        headers={**person.auth, "content-type": "application/json"},
    )

    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == PROBLEM
    assert await identity.loa(person.id) == "substantial"
