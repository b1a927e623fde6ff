"""The node signs documents with a key of their own: a detached JWS (RFC 7797) anyone verifies
offline from the document key set alone, with joserfc or with cryptography directly; the key
is never good for tokens; retired keys stay published; only `identity:sign` may sign."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from fastapi import FastAPI
from joserfc import jws as jose_jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tongban_identity.main import create_app
from tongban_identity.settings import IdentitySettings
from tongban_identity.signatures.document_keys import rotate_document_keys
from tongban_identity.tokens.service import issue_access_token
from tongban_kit.auth import InvalidToken, JwksCache, verify_access_token
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import running_app

PROBLEM = "application/problem+json"
E_LICENCE = (
    '{"type":"e-licence","uscc":"91440300MA5FXXXX0X","name":"深圳市通办科技有限公司",'
    '"issued":"2026-03-01"}'
).encode()


@dataclass
class Identity:
    app: FastAPI
    client: httpx.AsyncClient
    settings: IdentitySettings

    async def token(self, *scopes: str, subject: str = "registration") -> str:
        """A client-credentials style token (no sign-in) from identity's own token key."""
        async with self.app.state.sessionmaker() as session, session.begin():
            return await issue_access_token(
                session,
                vault=self.app.state.key_vault,
                issuer=self.settings.issuer,
                subject=subject,
                audience=self.app.state.token_audience,
                scope=scopes,
                acr=None,
                amr=[],
                auth_time=None,
                node=self.settings.node.node_code,
            )

    async def sign(self, document: bytes, **overrides: Any) -> httpx.Response:
        body: dict[str, Any] = {
            "document_sha256": hashlib.sha256(document).hexdigest(),
            "document_type": "e-licence",
            "metadata": {"licence_no": "SZ-2026-000001"},
        }
        body.update(overrides)
        token = await self.token("identity:sign")
        return await self.client.post(
            "/v1/internal/signatures", json=body, headers={"Authorization": f"Bearer {token}"}
        )

    async def document_jwks(self) -> dict[str, Any]:
        response = await self.client.get("/.well-known/document-jwks.json")
        assert response.status_code == 200
        document: dict[str, Any] = response.json()
        return document

    async def sql(self, statement: str, **params: object) -> list[tuple[Any, ...]]:
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


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_with_cryptography(jwks: dict[str, Any], jws: str, document: bytes) -> None:
    """The integrator guide's recipe: no JOSE library, only the JWKS and `cryptography`."""
    header_b64, payload_part, signature_b64 = jws.split(".")
    assert payload_part == ""  # detached
    header = json.loads(_b64url_decode(header_b64))
    assert (header["alg"], header["b64"], header["crit"]) == ("ES256", False, ["b64"])
    jwk = next(key for key in jwks["keys"] if key["kid"] == header["kid"])
    public_key = ec.EllipticCurvePublicNumbers(
        int.from_bytes(_b64url_decode(jwk["x"]), "big"),
        int.from_bytes(_b64url_decode(jwk["y"]), "big"),
        ec.SECP256R1(),
    ).public_key()
    raw = _b64url_decode(signature_b64)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    signing_input = f"{header_b64}.{hashlib.sha256(document).hexdigest()}".encode("ascii")
    public_key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))


def verify_with_joserfc(jwks: dict[str, Any], jws: str, document: bytes) -> None:
    jose_jws.deserialize_compact(
        jws,
        KeySet.import_key_set(jwks),  # type: ignore[arg-type]
        algorithms=["ES256"],
        payload=hashlib.sha256(document).hexdigest(),
    )


# --- the key ------------------------------------------------------------------------------


async def test_a_fresh_node_publishes_one_document_key_apart_from_its_token_keys(
    identity: Identity,
) -> None:
    response = await identity.client.get("/.well-known/document-jwks.json")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    (key,) = response.json()["keys"]
    assert set(key) == {"kid", "kty", "crv", "x", "y", "alg", "use"}
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
    assert key["kid"].startswith("doc-")
    token_kids = [
        k["kid"] for k in (await identity.client.get("/.well-known/jwks.json")).json()["keys"]
    ]
    assert key["kid"] not in token_kids
    assert all(not kid.startswith("doc-") for kid in token_kids)


async def test_the_document_key_is_sealed_at_rest_and_survives_a_restart(
    identity: Identity,
) -> None:
    before = await identity.document_jwks()

    async with running_app(create_app(identity.settings)):
        pass

    assert await identity.document_jwks() == before
    [(state, sealed)] = await identity.sql(
        "SELECT state, private_key_encrypted FROM document_signing_keys"
    )
    assert state == "active"
    assert b"PRIVATE KEY" not in bytes(sealed)


# --- signing and verifying ----------------------------------------------------------------


async def test_an_e_licence_signature_verifies_offline_with_joserfc_from_the_key_set_alone(
    identity: Identity,
) -> None:
    response = await identity.sign(E_LICENCE)
    jwks = await identity.document_jwks()

    assert response.status_code == 201, response.text
    signature = response.json()
    verify_with_joserfc(jwks, signature["jws"], E_LICENCE)
    header = json.loads(_b64url_decode(signature["jws"].split(".")[0]))
    assert header == {
        "kid": signature["kid"],
        "typ": "tongban-document+jws",
        "alg": "ES256",
        "b64": False,
        "crit": ["b64"],
    }
    assert signature["document_sha256"] == hashlib.sha256(E_LICENCE).hexdigest()


async def test_an_e_licence_signature_verifies_with_cryptography_directly(
    identity: Identity,
) -> None:
    signature = (await identity.sign(E_LICENCE)).json()

    verify_with_cryptography(await identity.document_jwks(), signature["jws"], E_LICENCE)


async def test_a_tampered_document_is_refused_offline_and_by_the_verify_endpoint(
    identity: Identity,
) -> None:
    signature = (await identity.sign(E_LICENCE)).json()
    tampered = E_LICENCE.replace(b"2026-03-01", b"2016-03-01")
    jwks = await identity.document_jwks()

    with pytest.raises(BadSignatureError):
        verify_with_joserfc(jwks, signature["jws"], tampered)
    with pytest.raises(InvalidSignature):
        verify_with_cryptography(jwks, signature["jws"], tampered)
    response = await identity.client.post(
        "/v1/signatures/verify",
        json={"document_sha256": hashlib.sha256(tampered).hexdigest(), "jws": signature["jws"]},
    )
    assert response.status_code == 200
    assert response.json()["valid"] is False
    assert response.json()["kid"] == signature["kid"]


async def test_the_verify_endpoint_confirms_a_genuine_signature_and_when_it_was_made(
    identity: Identity,
) -> None:
    signature = (await identity.sign(E_LICENCE)).json()

    response = await identity.client.post(
        "/v1/signatures/verify",
        json={"document_sha256": signature["document_sha256"].upper(), "jws": signature["jws"]},
    )

    assert response.status_code == 200
    assert response.json() == {
        "valid": True,
        "kid": signature["kid"],
        "signed_at": signature["signed_at"],
        "reason": None,
    }


async def test_each_signature_is_recorded_with_its_type_metadata_and_caller(
    identity: Identity,
) -> None:
    signature = (await identity.sign(E_LICENCE, document_type="audit-checkpoint")).json()

    rows = await identity.sql(
        "SELECT id, document_sha256, document_type, kid, jws, metadata, caller "
        "FROM document_signatures"
    )

    assert [(str(r[0]), *r[1:]) for r in rows] == [
        (
            signature["id"],
            hashlib.sha256(E_LICENCE).hexdigest(),
            "audit-checkpoint",
            signature["kid"],
            signature["jws"],
            {"licence_no": "SZ-2026-000001"},
            "registration",
        )
    ]


async def test_a_retired_document_key_stays_published_and_what_it_signed_still_verifies(
    identity: Identity,
) -> None:
    old = (await identity.sign(E_LICENCE)).json()

    rotation = await rotate_document_keys(identity.settings)
    new = (await identity.sign(E_LICENCE)).json()
    jwks = await identity.document_jwks()

    assert (rotation.retired, rotation.active) == (old["kid"], new["kid"])
    assert [key["kid"] for key in jwks["keys"]] == [new["kid"], old["kid"]]
    verify_with_joserfc(jwks, old["jws"], E_LICENCE)
    verify_with_joserfc(jwks, new["jws"], E_LICENCE)
    verdict = await identity.client.post(
        "/v1/signatures/verify", json={"document_sha256": old["document_sha256"], "jws": old["jws"]}
    )
    assert verdict.json()["valid"] is True
    sealed = dict(
        await identity.sql("SELECT kid, private_key_encrypted FROM document_signing_keys")
    )
    assert sealed[old["kid"]] is None


async def test_operators_rotate_the_document_key_from_the_command_line(
    identity: Identity,
) -> None:
    (old,) = (await identity.document_jwks())["keys"]

    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tongban_identity.signatures", "rotate-key"],
        env={**os.environ, "TONGBAN_IDENTITY_DATABASE_URL": identity.settings.database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    new, retired = (await identity.document_jwks())["keys"]
    assert retired == old
    assert f"document key {new['kid']} signs now; {old['kid']} retired" in result.stdout
    signature = (await identity.sign(E_LICENCE)).json()
    assert signature["kid"] == new["kid"]


async def test_a_signature_by_a_token_key_is_not_a_document_signature(identity: Identity) -> None:
    digest = hashlib.sha256(E_LICENCE).hexdigest()
    # A token (any JWS by a token key) is not the node's signature of a document.
    token = await identity.token("identity:sign")
    token_kid = jwt.get_unverified_header(token)["kid"]
    [(sealed,)] = await identity.sql(
        "SELECT private_key_encrypted FROM signing_keys WHERE kid = :kid", kid=token_kid
    )
    token_key = identity.app.state.key_vault.unseal(token_kid, bytes(sealed))
    header = _b64url(
        json.dumps(
            {
                "alg": "ES256",
                "kid": token_kid,
                "typ": "tongban-document+jws",
                "b64": False,
                "crit": ["b64"],
            }
        ).encode()
    )
    jws = f"{header}..{_raw_es256(token_key, f'{header}.{digest}'.encode())}"

    response = await identity.client.post(
        "/v1/signatures/verify", json={"document_sha256": digest, "jws": jws}
    )

    assert response.json()["valid"] is False
    assert response.json()["reason"] == "not signed with a document key of this node"


async def test_a_token_made_with_the_document_key_is_refused_by_identitys_token_checks(
    identity: Identity,
) -> None:
    (kid,) = [key["kid"] for key in (await identity.document_jwks())["keys"]]
    [(sealed,)] = await identity.sql(
        "SELECT private_key_encrypted FROM document_signing_keys WHERE kid = :kid", kid=kid
    )
    document_key = identity.app.state.document_key_vault.unseal(kid, bytes(sealed))
    genuine = jwt.decode(await identity.token("identity:sign"), options={"verify_signature": False})
    forged = jwt.encode(
        genuine, document_key, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"}
    )

    response = await identity.client.post(
        "/v1/internal/signatures",
        json={"document_sha256": "a" * 64, "document_type": "e-licence"},
        headers={"Authorization": f"Bearer {forged}"},
    )

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["detail"] == "the token is signed with a key the issuer does not publish"
    cache = JwksCache(f"{identity.client.base_url}/.well-known/jwks.json", identity.client)
    with pytest.raises(InvalidToken):
        await verify_access_token(
            forged,
            jwks=cache,
            issuer=identity.settings.issuer,
            audience=identity.app.state.token_audience,
        )
    assert await identity.sql("SELECT count(*) FROM document_signatures") == [(0,)]


# --- who may sign, and what is refused ----------------------------------------------------


async def test_signing_needs_a_token_and_the_identity_sign_scope(identity: Identity) -> None:
    body = {"document_sha256": "a" * 64, "document_type": "e-licence"}

    anonymous = await identity.client.post("/v1/internal/signatures", json=body)
    unscoped = await identity.client.post(
        "/v1/internal/signatures",
        json=body,
        headers={"Authorization": f"Bearer {await identity.token('identity:verify')}"},
    )

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert unscoped.status_code == 403
    assert 'scope="identity:sign"' in unscoped.headers["www-authenticate"]
    for response in (anonymous, unscoped):
        assert response.headers["content-type"] == PROBLEM
    assert await identity.sql("SELECT count(*) FROM document_signatures") == [(0,)]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ('{"document_sha256": ', 400),
        ({"document_sha256": "a" * 63, "document_type": "e-licence"}, 422),
        ({"document_sha256": "g" * 64, "document_type": "e-licence"}, 422),
        ({"document_sha256": "a" * 64, "document_type": "E Licence"}, 422),
        ({"document_sha256": "a" * 64, "document_type": "e-licence", "extra": 1}, 422),
        (
            {
                "document_sha256": "a" * 64,
                "document_type": "e-licence",
                "metadata": {f"k{i}": i for i in range(21)},
            },
            422,
        ),
        (
            {"document_sha256": "a" * 64, "document_type": "e-licence", "metadata": {"k": {}}},
            422,
        ),
        ({"document_sha256": "a" * 64, "document_type": "x" * 2_000_000}, 413),
    ],
    ids=[
        "malformed-json",
        "short-digest",
        "not-hex",
        "bad-type",
        "unknown-field",
        "metadata-too-many",
        "metadata-nested",
        "oversized",
    ],
)
async def test_a_bad_signing_request_is_a_problem_and_signs_nothing(
    identity: Identity, body: Any, status: int
) -> None:
    token = await identity.token("identity:sign")
    content = body if isinstance(body, str) else json.dumps(body)

    response = await identity.client.post(
        "/v1/internal/signatures",
        content=content,
        headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
    )

    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    assert await identity.sql("SELECT count(*) FROM document_signatures") == [(0,)]


@pytest.mark.parametrize(
    "jws",
    ["not-a-jws", "a.b.c", "eyJhbGciOiJub25lIn0..", "eyJhbGciOiJFUzI1NiJ9..AAAA"],
    ids=["one-part", "garbage", "alg-none", "b64-missing"],
)
async def test_the_verify_endpoint_says_invalid_for_a_jws_it_cannot_read(
    identity: Identity, jws: str
) -> None:
    response = await identity.client.post(
        "/v1/signatures/verify", json={"document_sha256": "a" * 64, "jws": jws}
    )

    assert response.status_code == 200
    assert response.json()["valid"] is False
    assert response.json()["reason"]


async def test_the_verify_endpoint_refuses_an_oversized_jws_as_a_problem(
    identity: Identity,
) -> None:
    response = await identity.client.post(
        "/v1/signatures/verify", json={"document_sha256": "a" * 64, "jws": "a." * 2000}
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw_es256(key: ec.EllipticCurvePrivateKey, signing_input: bytes) -> str:
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
