"""The discovery document (OpenID Connect Discovery, RFC 8414) is complete and true: every
endpoint it names answers, and it names every claim, grant and method identity uses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest

from tongban_identity.departments.testing import enrol_client
from tongban_identity.sessions.testing import SignInDriver, resident_id, running_identity
from tongban_kit.settings import NodeSettings

PERSON = resident_id(2)


@pytest.fixture
async def identity(make_database, node_settings: NodeSettings) -> AsyncIterator[SignInDriver]:  # type: ignore[no-untyped-def]
    url = await make_database("tongban_identity:migrations")
    async with running_identity(url, node_settings, run_workers=False) as driver:
        yield driver


async def _document(identity: SignInDriver) -> dict[str, Any]:
    response = await identity.client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    assert "max-age" in response.headers["cache-control"]
    document: dict[str, Any] = response.json()
    return document


def _path(identity: SignInDriver, url: str) -> str:
    issuer = identity.settings.issuer
    assert url.startswith(f"{issuer}/"), url
    return url.removeprefix(issuer)


async def test_the_document_names_methods_subject_types_levels_and_grants(
    identity: SignInDriver,
) -> None:
    document = await _document(identity)

    assert document["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert set(document["token_endpoint_auth_signing_alg_values_supported"]) == {"ES256", "EdDSA"}
    assert document["introspection_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert set(document["subject_types_supported"]) == {"public", "pairwise"}
    assert document["acr_values_supported"] == ["low", "substantial", "high"]
    assert set(document["grant_types_supported"]) == {"client_credentials", "refresh_token"}
    for claim in ("department", "department_name", "client_id", "business", "acr", "sid"):
        assert claim in document["claims_supported"]


async def test_every_endpoint_the_document_names_answers(identity: SignInDriver) -> None:
    document = await _document(identity)

    for key in ("jwks_uri", "tongban_document_jwks_uri"):
        response = await identity.client.get(_path(identity, document[key]))
        assert response.status_code == 200, key
        assert response.json()["keys"], key
    for key in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        # An empty form: the endpoint exists and says what is missing.
        response = await identity.client.post(_path(identity, document[key]), data={"x": "1"})
        assert response.status_code in (400, 401), (key, response.status_code)
        assert response.json()["error"] in ("invalid_request", "invalid_client"), key


async def test_tokens_carry_only_claims_the_document_names(identity: SignInDriver) -> None:
    document = await _document(identity)
    await identity.sign_up(PERSON)
    person = (await identity.tokens(PERSON))["access_token"]
    tax = await enrol_client(identity.app, "tax", ["exchange:query"])
    issued = await identity.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            **tax.authentication(document["token_endpoint"]),
        },
    )

    for token in (person, issued.json()["access_token"]):
        claims = jwt.decode(token, options={"verify_signature": False})
        assert set(claims) <= set(document["claims_supported"])
