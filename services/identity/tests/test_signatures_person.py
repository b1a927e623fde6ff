"""Persons register P-256 and Ed25519 public keys and sign document digests with them (detached
JWS, RFC 7797); services check those signatures with `identity:verify`. Revoked keys, other
algorithms, other digests and other purposes are refused; bad keys are never stored."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi import FastAPI
from joserfc import jws as jose_jws
from joserfc.jwk import ECKey, OKPKey
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tongban_identity.main import create_app
from tongban_identity.models import Person
from tongban_identity.settings import IdentitySettings
from tongban_identity.signatures.person_keys import InvalidSignature, verify_person_signature
from tongban_identity.signatures.testing import (
    PrivateKey,
    b64url,
    mint_token,
    public_jwk,
    sign_detached,
)
from tongban_kit.auth import AssuranceLevel
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import running_app

PROBLEM = "application/problem+json"
DOCUMENT = "营业执照申请书 / business registration application, v3".encode()
DIGEST = hashlib.sha256(DOCUMENT).hexdigest()
OTHER_DIGEST = hashlib.sha256(DOCUMENT + b" ").hexdigest()


@dataclass
class Identity:
    app: FastAPI
    client: httpx.AsyncClient
    settings: IdentitySettings

    async def token(
        self, *scopes: str, subject: str = "registration", acr: AssuranceLevel | None = None
    ) -> str:
        return await mint_token(self.app, *scopes, subject=subject, acr=acr)

    async def person(self, loa: AssuranceLevel = "low") -> SignedInPerson:
        async with self.app.state.sessionmaker() as session, session.begin():
            person = Person(name="王小明", node=self.settings.node.node_code, loa=loa)
            session.add(person)
            await session.flush()
            person_id = person.id
        token = await self.token("openid", subject=str(person_id), acr=loa)
        return SignedInPerson(self, person_id, {"Authorization": f"Bearer {token}"})

    async def verify(self, person_id: uuid.UUID, digest: str, jws: str) -> dict[str, Any]:
        token = await self.token("identity:verify")
        response = await self.client.post(
            "/v1/signatures/verify-person",
            json={"person_id": str(person_id), "document_sha256": digest, "jws": jws},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        verdict: dict[str, Any] = response.json()
        return verdict

    async def count_keys(self) -> int:
        engine = create_async_engine(self.settings.database_url)
        try:
            async with engine.connect() as conn:
                count = await conn.scalar(text("SELECT count(*) FROM person_keys"))
                return int(count or 0)
        finally:
            await engine.dispose()


@dataclass
class SignedInPerson:
    identity: Identity
    id: uuid.UUID
    auth: dict[str, str]

    async def register(self, jwk: Any) -> httpx.Response:
        return await self.identity.client.post("/v1/me/keys", json={"jwk": jwk}, headers=self.auth)

    async def registered(self, key: PrivateKey) -> str:
        response = await self.register(public_jwk(key))
        assert response.status_code == 201, response.text
        kid: str = response.json()["kid"]
        return kid


@pytest.fixture
async def identity(make_database, node_settings: NodeSettings) -> AsyncIterator[Identity]:  # type: ignore[no-untyped-def]
    url = await make_database("tongban_identity:migrations")
    settings = IdentitySettings(database_url=url, node=node_settings, run_workers=False)
    app = create_app(settings)
    async with running_app(app) as client:
        yield Identity(app, client, settings)


# --- registering --------------------------------------------------------------------------


async def test_a_person_registers_a_p256_key_named_by_its_thumbprint(identity: Identity) -> None:
    person = await identity.person()
    jwk = public_jwk(ec.generate_private_key(ec.SECP256R1()))

    response = await person.register({**jwk, "alg": "ES256", "use": "sig", "kid": "mine"})

    assert response.status_code == 201, response.text
    key = response.json()
    assert key["kid"] == ECKey.import_key(jwk).thumbprint()  # type: ignore[arg-type]
    assert key["alg"] == "ES256"
    assert key["jwk"] == {**jwk, "kid": key["kid"], "alg": "ES256", "use": "sig"}
    assert key["revoked_at"] is None


async def test_a_person_registers_an_ed25519_key_for_eddsa(identity: Identity) -> None:
    person = await identity.person()
    jwk = public_jwk(ed25519.Ed25519PrivateKey.generate())

    response = await person.register(jwk)

    assert response.status_code == 201, response.text
    assert response.json()["kid"] == OKPKey.import_key(jwk).thumbprint()  # type: ignore[arg-type]
    assert response.json()["alg"] == "EdDSA"


async def test_a_person_lists_their_keys_revoked_ones_marked(identity: Identity) -> None:
    person = await identity.person()
    await person.registered(ec.generate_private_key(ec.SECP256R1()))
    second = (await person.register(public_jwk(ed25519.Ed25519PrivateKey.generate()))).json()

    revoked = await identity.client.delete(f"/v1/me/keys/{second['id']}", headers=person.auth)
    again = await identity.client.delete(f"/v1/me/keys/{second['id']}", headers=person.auth)
    listing = await identity.client.get("/v1/me/keys", headers=person.auth)

    assert (revoked.status_code, again.status_code) == (204, 204)
    keys = listing.json()["keys"]
    assert [key["alg"] for key in keys] == ["ES256", "EdDSA"]
    assert keys[0]["revoked_at"] is None
    assert keys[1]["revoked_at"] is not None


async def test_a_key_is_registered_once_even_by_someone_else(identity: Identity) -> None:
    jwk = public_jwk(ec.generate_private_key(ec.SECP256R1()))
    first, second = await identity.person(), await identity.person()
    await first.register(jwk)

    again = await first.register(jwk)
    other = await second.register(jwk)

    assert (again.status_code, other.status_code) == (409, 409)
    assert await identity.count_keys() == 1


async def test_a_key_spelled_another_way_is_the_same_key(identity: Identity) -> None:
    person = await identity.person()
    jwk = public_jwk(ed25519.Ed25519PrivateKey.generate())
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # The last of 43 characters carries 2 spare bits: flipping one spells the same 32 bytes.
    respelled = jwk["x"][:-1] + alphabet[alphabet.index(jwk["x"][-1]) ^ 1]
    first = await person.register(jwk)

    again = await person.register({**jwk, "x": respelled})

    assert again.status_code == 409
    assert first.json()["jwk"]["x"] == jwk["x"]
    assert await identity.count_keys() == 1


async def test_a_person_holds_at_most_ten_live_keys(identity: Identity) -> None:
    person = await identity.person()
    for _ in range(10):
        await person.registered(ed25519.Ed25519PrivateKey.generate())

    eleventh = await person.register(public_jwk(ed25519.Ed25519PrivateKey.generate()))

    assert eleventh.status_code == 409
    assert eleventh.headers["content-type"] == PROBLEM


async def test_nobody_revokes_another_persons_key(identity: Identity) -> None:
    owner, other = await identity.person(), await identity.person()
    key = (await owner.register(public_jwk(ec.generate_private_key(ec.SECP256R1())))).json()

    response = await identity.client.delete(f"/v1/me/keys/{key['id']}", headers=other.auth)

    assert response.status_code == 404
    listing = await identity.client.get("/v1/me/keys", headers=owner.auth)
    assert listing.json()["keys"][0]["revoked_at"] is None


def _p256_private_jwk() -> dict[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    return {**public_jwk(key), "d": b64url(key.private_numbers().private_value.to_bytes(32, "big"))}


def _p384_jwk() -> dict[str, str]:
    numbers = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-384",
        "x": b64url(numbers.x.to_bytes(48, "big")),
        "y": b64url(numbers.y.to_bytes(48, "big")),
    }


def _rsa_jwk() -> dict[str, str]:
    numbers = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    n = numbers.public_numbers().n
    return {"kty": "RSA", "n": b64url(n.to_bytes(256, "big")), "e": "AQAB"}


def _off_curve_jwk() -> dict[str, str]:
    jwk = public_jwk(ec.generate_private_key(ec.SECP256R1()))
    return {**jwk, "y": jwk["x"]}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"jwk": _p256_private_jwk()}, 400),
        ({"jwk": _p384_jwk()}, 400),
        ({"jwk": _rsa_jwk()}, 400),
        ({"jwk": _off_curve_jwk()}, 400),
        ({"jwk": {**public_jwk(ed25519.Ed25519PrivateKey.generate()), "alg": "ES256"}}, 400),
        ({"jwk": {**public_jwk(ec.generate_private_key(ec.SECP256R1())), "use": "enc"}}, 400),
        ({"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "!!"}}, 400),
        ({"jwk": "not an object"}, 422),
        ({"jwk": public_jwk(ed25519.Ed25519PrivateKey.generate()), "label": "x"}, 422),
        ('{"jwk": {', 400),
        ({"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "A" * 2_000_000}}, 413),
    ],
    ids=[
        "private-key",
        "p384",
        "rsa",
        "off-curve",
        "alg-mismatch",
        "use-enc",
        "bad-base64",
        "not-an-object",
        "unknown-field",
        "malformed-json",
        "oversized",
    ],
)
async def test_a_bad_key_is_a_problem_and_nothing_is_stored(
    identity: Identity, body: Any, status: int
) -> None:
    person = await identity.person()
    content = body if isinstance(body, str) else json.dumps(body)

    response = await identity.client.post(
        "/v1/me/keys", content=content, headers={**person.auth, "content-type": "application/json"}
    )

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert "AAAAAAAA" not in response.text
    assert await identity.count_keys() == 0


async def test_key_endpoints_need_a_persons_own_token(identity: Identity) -> None:
    jwk = {"jwk": public_jwk(ed25519.Ed25519PrivateKey.generate())}
    client_token = await identity.token("identity:sign", "identity:verify")

    anonymous = await identity.client.post("/v1/me/keys", json=jwk)
    client = await identity.client.post(
        "/v1/me/keys", json=jwk, headers={"Authorization": f"Bearer {client_token}"}
    )
    listing = await identity.client.get("/v1/me/keys")

    assert (anonymous.status_code, client.status_code, listing.status_code) == (401, 403, 401)
    assert await identity.count_keys() == 0


# --- signatures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_key",
    [lambda: ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate],
    ids=["p256", "ed25519"],
)
async def test_a_persons_signature_of_a_digest_verifies_and_another_digest_does_not(
    identity: Identity, make_key: Any
) -> None:
    person = await identity.person()
    key = make_key()
    kid = await person.registered(key)
    jws = sign_detached(key, DIGEST, kid=kid)

    genuine = await identity.verify(person.id, DIGEST, jws)
    tampered = await identity.verify(person.id, OTHER_DIGEST, jws)

    assert genuine["valid"] is True
    assert genuine["kid"] == kid
    assert tampered == {
        "valid": False,
        "key_id": None,
        "kid": None,
        "reason": "the signature does not verify over what it should sign",
    }


async def test_an_ed25519_signature_may_name_the_fully_specified_algorithm(
    identity: Identity,
) -> None:
    person = await identity.person()
    key = ed25519.Ed25519PrivateKey.generate()
    kid = await person.registered(key)

    verdict = await identity.verify(
        person.id, DIGEST, sign_detached(key, DIGEST, kid=kid, alg="Ed25519")
    )

    assert verdict["valid"] is True


async def test_a_signature_made_with_joserfc_verifies_too(identity: Identity) -> None:
    person = await identity.person()
    key = ec.generate_private_key(ec.SECP256R1())
    kid = await person.registered(key)
    header = {"alg": "ES256", "kid": kid, "typ": "tongban-document+jws", "b64": False}
    header["crit"] = ["b64"]

    jws = jose_jws.serialize_compact(header, DIGEST, ECKey.import_key(key))

    assert (await identity.verify(person.id, DIGEST, jws))["valid"] is True


async def test_a_revoked_key_no_longer_verifies(identity: Identity) -> None:
    person = await identity.person()
    key = ec.generate_private_key(ec.SECP256R1())
    registered = (await person.register(public_jwk(key))).json()
    jws = sign_detached(key, DIGEST, kid=registered["kid"])

    await identity.client.delete(f"/v1/me/keys/{registered['id']}", headers=person.auth)

    verdict = await identity.verify(person.id, DIGEST, jws)
    assert verdict["valid"] is False
    assert verdict["reason"] == "the key that made this signature is revoked"


@pytest.mark.parametrize(
    ("key_type", "alg"),
    [("p256", "EdDSA"), ("p256", "ES384"), ("p256", "HS256"), ("ed25519", "ES256")],
)
async def test_an_algorithm_the_key_does_not_sign_with_is_refused(
    identity: Identity, key_type: str, alg: str
) -> None:
    person = await identity.person()
    key: PrivateKey = (
        ec.generate_private_key(ec.SECP256R1())
        if key_type == "p256"
        else ed25519.Ed25519PrivateKey.generate()
    )
    kid = await person.registered(key)

    verdict = await identity.verify(person.id, DIGEST, sign_detached(key, DIGEST, kid=kid, alg=alg))

    assert verdict["valid"] is False
    assert "signs with" in verdict["reason"]


async def test_a_challenge_signature_does_not_pass_for_a_document_signature(
    identity: Identity,
) -> None:
    person = await identity.person()
    key = ed25519.Ed25519PrivateKey.generate()
    kid = await person.registered(key)

    jws = sign_detached(key, DIGEST, kid=kid, typ="tongban-challenge+jws")

    verdict = await identity.verify(person.id, DIGEST, jws)
    assert verdict["valid"] is False
    assert verdict["reason"] == 'the JWS "typ" must be "tongban-document+jws"'


async def test_a_signature_by_someone_elses_key_is_not_this_persons(identity: Identity) -> None:
    me, other = await identity.person(), await identity.person()
    key = ec.generate_private_key(ec.SECP256R1())
    kid = await other.registered(key)

    verdict = await identity.verify(me.id, DIGEST, sign_detached(key, DIGEST, kid=kid))

    assert verdict["valid"] is False
    assert verdict["reason"] == "the JWS names no key this person registered"


async def test_verify_person_signature_returns_the_key_that_signed(identity: Identity) -> None:
    person = await identity.person()
    key = ed25519.Ed25519PrivateKey.generate()
    kid = await person.registered(key)
    jws = sign_detached(key, DIGEST, kid=kid)

    async with identity.app.state.sessionmaker() as session:
        found = await verify_person_signature(
            session, person_id=person.id, document_sha256=DIGEST.upper(), jws=jws
        )
        with pytest.raises(InvalidSignature):
            await verify_person_signature(
                session, person_id=person.id, document_sha256=OTHER_DIGEST, jws=jws
            )

    assert (found.person_id, found.thumbprint) == (person.id, kid)


async def test_checking_a_persons_signature_needs_identity_verify(identity: Identity) -> None:
    body = {"person_id": str(uuid.uuid4()), "document_sha256": DIGEST, "jws": "a..b"}

    anonymous = await identity.client.post("/v1/signatures/verify-person", json=body)
    unscoped = await identity.client.post(
        "/v1/signatures/verify-person",
        json=body,
        headers={"Authorization": f"Bearer {await identity.token('identity:sign')}"},
    )

    assert (anonymous.status_code, unscoped.status_code) == (401, 403)
    assert unscoped.headers["content-type"] == PROBLEM
