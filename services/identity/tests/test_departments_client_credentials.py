"""Client credentials with private_key_jwt: a department signs an assertion with a key it
registered and gets an access token every service verifies; every fault of the assertion is
refused with an RFC 6749 error and leaves nothing behind."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import KeySet, OKPKey
from jwt.algorithms import ECAlgorithm
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tongban_identity.departments import service
from tongban_identity.departments.assertions import CLIENT_ASSERTION_TYPE
from tongban_identity.departments.errors import InvalidRequest, OAuthError
from tongban_identity.departments.schemas import DepartmentCreate, TokenResponse
from tongban_identity.main import create_app
from tongban_identity.settings import IdentitySettings
from tongban_identity.tokens.service import issue_access_token
from tongban_kit.auth import JwksCache, verify_access_token
from tongban_kit.db import SessionDep
from tongban_kit.errors import TongbanError, problem_response
from tongban_kit.service import create_base_app
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import running_app

AUDIENCE = "tongban:440300"
TAX_SCOPES = ["exchange:subscribe", "exchange:query"]
PROBLEM = "application/problem+json"


@dataclass
class Department:
    """A department's side: its client id and the private key it signs assertions with."""

    client_id: str
    kid: str
    private_key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

    @property
    def alg(self) -> str:
        return "ES256" if isinstance(self.private_key, ec.EllipticCurvePrivateKey) else "EdDSA"


@dataclass
class Identity:
    app: FastAPI
    client: httpx.AsyncClient
    settings: IdentitySettings

    @property
    def token_endpoint(self) -> str:
        return f"{self.settings.issuer}/oauth/token"

    async def enrol(self, code: str, key: Any, *, kid: str, scopes: list[str]) -> Department:
        jwk = _public_jwk(key)
        enrolment = DepartmentCreate(
            code=code, name=f"{code} bureau", scopes=scopes, jwks={"keys": [{**jwk, "kid": kid}]}
        )
        async with self.app.state.sessionmaker() as session, session.begin():
            client = await service.create_department(session, enrolment=enrolment, node="440300")
        return Department(client.client_id, kid, key)

    async def grant(self, form: Mapping[str, str], *, now: datetime | None = None) -> TokenResponse:
        async with self.app.state.sessionmaker() as session, session.begin():
            return await service.client_credentials_grant(
                session,
                form=form,
                vault=self.app.state.key_vault,
                settings=self.settings,
                now=now or datetime.now(UTC),
            )

    async def refused(self, form: Mapping[str, str]) -> TongbanError:
        """Refuse, and commit whatever the grant wrote, as the token endpoint does (it answers
        the error instead of raising it, so a refusal can record what it must)."""
        async with self.app.state.sessionmaker() as session, session.begin():
            with pytest.raises(TongbanError) as caught:
                await service.client_credentials_grant(
                    session,
                    form=form,
                    vault=self.app.state.key_vault,
                    settings=self.settings,
                    now=datetime.now(UTC),
                )
        return caught.value

    def jwks_cache(self) -> JwksCache:
        return JwksCache(f"{self.client.base_url}/.well-known/jwks.json", self.client)

    async def sql(self, statement: str) -> list[tuple[Any, ...]]:
        engine = create_async_engine(self.settings.database_url)
        try:
            async with engine.connect() as conn:
                return [tuple(row) for row in await conn.execute(text(statement))]
        finally:
            await engine.dispose()


def _public_jwk(key: Any) -> dict[str, Any]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw)}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims_for(department: Department, identity: Identity, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": department.client_id,
        "sub": department.client_id,
        "aud": identity.token_endpoint,
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def sign(department: Department, claims: Mapping[str, Any], **header: Any) -> str:
    """What a department's software does: ES256 with PyJWT, EdDSA with joserfc."""
    headers = {"kid": department.kid, **header}
    if department.alg == "ES256":
        return jwt.encode(dict(claims), department.private_key, algorithm="ES256", headers=headers)
    pem = department.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key = OKPKey.import_key(pem)
    with warnings.catch_warnings():  # joserfc prefers RFC 9864's "Ed25519"; we speak "EdDSA"
        warnings.simplefilter("ignore")
        return joserfc_jwt.encode(
            {"alg": "EdDSA", **headers}, dict(claims), key, algorithms=["EdDSA"]
        )


def form_for(assertion: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion,
        **extra,
    }


def unsigned(header: Mapping[str, Any], claims: Mapping[str, Any], secret: bytes = b"") -> str:
    """A JWS put together by hand: ``alg: none``, or HS256 keyed with ``secret``."""
    signing_input = (
        _b64(json.dumps(dict(header)).encode()) + "." + _b64(json.dumps(dict(claims)).encode())
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest() if secret else b""
    return signing_input + "." + _b64(signature)


@pytest.fixture
async def identity(make_database, node_settings: NodeSettings) -> AsyncIterator[Identity]:  # type: ignore[no-untyped-def]
    url = await make_database("tongban_identity:migrations")
    settings = IdentitySettings(database_url=url, node=node_settings, run_workers=False)
    app = create_app(settings)
    async with running_app(app) as client:
        yield Identity(app, client, settings)


async def enrol_tax(identity: Identity) -> Department:
    """The tax bureau, with a P-256 key (ES256)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return await identity.enrol("tax", key, kid="tax-2026", scopes=TAX_SCOPES)


async def enrol_statistics(identity: Identity) -> Department:
    """The statistics bureau, with an Ed25519 key (EdDSA)."""
    key = ed25519.Ed25519PrivateKey.generate()
    return await identity.enrol("statistics", key, kid="stats-1", scopes=["exchange:subscribe"])


ENROL = {"ES256": enrol_tax, "EdDSA": enrol_statistics}


@pytest.fixture
async def tax(identity: Identity) -> Department:
    return await enrol_tax(identity)


@pytest.fixture
async def statistics(identity: Identity) -> Department:
    return await enrol_statistics(identity)


# -- tokens -------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
async def test_a_department_gets_a_token_the_kit_verifies_against_identitys_jwks(
    identity: Identity, alg: str
) -> None:
    department = await ENROL[alg](identity)

    response = await identity.grant(form_for(sign(department, claims_for(department, identity))))

    claims = await verify_access_token(
        response.access_token,
        jwks=identity.jwks_cache(),
        issuer=identity.settings.issuer,
        audience=AUDIENCE,
    )
    assert claims.sub == department.client_id
    assert claims.acr is None
    assert response.token_type == "Bearer"
    assert response.expires_in == identity.settings.access_token_ttl_s


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
async def test_another_jose_library_verifies_the_token_too(identity: Identity, alg: str) -> None:
    department = await ENROL[alg](identity)
    response = await identity.grant(form_for(sign(department, claims_for(department, identity))))

    published = (await identity.client.get("/.well-known/jwks.json")).json()
    token = joserfc_jwt.decode(
        response.access_token, KeySet.import_key_set(published), algorithms=["ES256"]
    )
    joserfc_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": identity.settings.issuer},
        aud={"essential": True, "value": AUDIENCE},
        sub={"essential": True, "value": department.client_id},
    ).validate(token.claims)
    assert token.header["typ"] == "at+jwt"


async def test_the_token_names_the_department_and_no_person(
    identity: Identity, tax: Department
) -> None:
    response = await identity.grant(form_for(sign(tax, claims_for(tax, identity))))

    claims = jwt.decode(response.access_token, options={"verify_signature": False})

    assert set(claims) == {
        "iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope", "node",
        "client_id", "department", "department_name",
    }  # fmt: skip
    assert claims["client_id"] == claims["sub"] == tax.client_id
    assert claims["department"] == "tax"
    assert claims["department_name"] == "tax bureau"
    assert claims["node"] == "440300"
    assert claims["scope"] == "exchange:subscribe exchange:query"


async def test_a_department_may_ask_for_fewer_scopes(identity: Identity, tax: Department) -> None:
    form = form_for(sign(tax, claims_for(tax, identity)), scope="exchange:query")

    response = await identity.grant(form)

    assert response.scope == "exchange:query"


async def test_the_issuer_itself_is_an_accepted_audience(
    identity: Identity, tax: Department
) -> None:
    claims = claims_for(tax, identity, aud=["https://elsewhere.example", identity.settings.issuer])

    response = await identity.grant(form_for(sign(tax, claims)))

    assert response.access_token


async def test_a_matching_client_id_parameter_is_accepted(
    identity: Identity, tax: Department
) -> None:
    form = form_for(sign(tax, claims_for(tax, identity)), client_id=tax.client_id)

    assert (await identity.grant(form)).access_token


async def test_a_used_assertion_is_remembered_until_it_expires(
    identity: Identity, tax: Department
) -> None:
    claims = claims_for(tax, identity)

    await identity.grant(form_for(sign(tax, claims)))

    rows = await identity.sql("SELECT client_id, jti, expires_at FROM client_assertion_jtis")
    assert [(client_id, jti) for client_id, jti, _ in rows] == [(tax.client_id, claims["jti"])]
    assert rows[0][2].timestamp() >= claims["exp"]


async def test_a_department_token_does_not_open_the_admin_api(
    identity: Identity, tax: Department
) -> None:
    response = await identity.grant(form_for(sign(tax, claims_for(tax, identity))))

    answer = await identity.client.get(
        "/v1/admin/departments", headers={"Authorization": f"Bearer {response.access_token}"}
    )

    assert answer.status_code == 403


# -- refusals -----------------------------------------------------------------------------


async def assert_refused(
    identity: Identity, form: Mapping[str, str], error: str = "invalid_client"
) -> TongbanError:
    refusal = await identity.refused(form)
    assert refusal.extensions["error"] == error
    assert refusal.status == (401 if error == "invalid_client" else 400)
    return refusal


async def test_a_replayed_assertion_is_refused(identity: Identity, tax: Department) -> None:
    form = form_for(sign(tax, claims_for(tax, identity)))
    await identity.grant(form)

    refusal = await assert_refused(identity, form)

    assert "used already" in refusal.detail


async def test_of_two_requests_racing_with_one_assertion_only_one_gets_a_token(
    identity: Identity, tax: Department
) -> None:
    form = form_for(sign(tax, claims_for(tax, identity)))

    results = await asyncio.gather(
        identity.grant(form), identity.grant(form), return_exceptions=True
    )

    assert sorted(type(result).__name__ for result in results) == ["InvalidClient", "TokenResponse"]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(time.time()) - 60}, "expired"),
        ({"exp": int(time.time()) + 3600}, "within 5 minutes"),
        ({"iat": int(time.time()) + 3600}, "future"),
        ({"aud": "https://identity.elsewhere.example/oauth/token"}, "aud"),
        ({"sub": "dept-someone-else"}, "iss and sub"),
        ({"jti": None}, "jti"),
        ({"exp": None}, "exp"),
        ({"exp": "tomorrow"}, "exp"),
    ],
)
async def test_an_assertion_with_bad_claims_is_refused(
    identity: Identity, tax: Department, overrides: dict[str, Any], reason: str
) -> None:
    refusal = await assert_refused(
        identity, form_for(sign(tax, claims_for(tax, identity, **overrides)))
    )

    assert reason in refusal.detail


async def test_alg_none_is_refused(identity: Identity, tax: Department) -> None:
    assertion = unsigned({"alg": "none", "kid": tax.kid}, claims_for(tax, identity))

    refusal = await assert_refused(identity, form_for(assertion))

    assert "'none' is not accepted" in refusal.detail


async def test_hs256_keyed_with_the_registered_public_key_is_refused(
    identity: Identity, tax: Department
) -> None:
    public_pem = tax.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assertion = unsigned(
        {"alg": "HS256", "kid": tax.kid}, claims_for(tax, identity), secret=public_pem
    )

    refusal = await assert_refused(identity, form_for(assertion))

    assert "'HS256' is not accepted" in refusal.detail


async def test_an_eddsa_header_on_an_ec_key_is_refused(identity: Identity, tax: Department) -> None:
    impostor = Department(tax.client_id, tax.kid, ed25519.Ed25519PrivateKey.generate())

    refusal = await assert_refused(identity, form_for(sign(impostor, claims_for(tax, identity))))

    assert "signs with ES256, not EdDSA" in refusal.detail


async def test_an_unknown_client_is_refused(identity: Identity, tax: Department) -> None:
    stranger = Department("dept-tax-000000000000", tax.kid, tax.private_key)

    refusal = await assert_refused(
        identity, form_for(sign(stranger, claims_for(stranger, identity)))
    )

    assert refusal.detail == "unknown client"


async def test_a_disabled_client_is_refused(identity: Identity, tax: Department) -> None:
    async with identity.app.state.sessionmaker() as session, session.begin():
        await service.disable_department(session, client_id=tax.client_id, now=datetime.now(UTC))

    refusal = await assert_refused(identity, form_for(sign(tax, claims_for(tax, identity))))

    assert "disabled" in refusal.detail


async def test_a_key_the_client_has_not_registered_is_refused(
    identity: Identity, tax: Department
) -> None:
    other = Department(tax.client_id, "laptop-key", ec.generate_private_key(ec.SECP256R1()))

    refusal = await assert_refused(identity, form_for(sign(other, claims_for(tax, identity))))

    assert "no key with kid 'laptop-key'" in refusal.detail


async def test_another_key_claiming_a_registered_kid_does_not_verify(
    identity: Identity, tax: Department
) -> None:
    impostor = Department(tax.client_id, tax.kid, ec.generate_private_key(ec.SECP256R1()))

    refusal = await assert_refused(identity, form_for(sign(impostor, claims_for(tax, identity))))

    assert "signature does not verify" in refusal.detail


async def test_one_departments_key_does_not_authenticate_another(
    identity: Identity, tax: Department, statistics: Department
) -> None:
    posing = Department(tax.client_id, statistics.kid, statistics.private_key)

    refusal = await assert_refused(identity, form_for(sign(posing, claims_for(tax, identity))))

    assert "no key with kid" in refusal.detail


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "client_credentials"},
        {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"},
        {"client_assertion_type": CLIENT_ASSERTION_TYPE},
        {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": "not.a.jwt"},
        {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": "x" * 9000},
    ],
)
async def test_a_request_without_a_usable_assertion_is_refused(
    identity: Identity, form: dict[str, str]
) -> None:
    await assert_refused(identity, form)


async def test_a_mismatched_client_id_parameter_is_refused(
    identity: Identity, tax: Department, statistics: Department
) -> None:
    form = form_for(sign(tax, claims_for(tax, identity)), client_id=statistics.client_id)

    await assert_refused(identity, form)


async def test_a_scope_beyond_the_clients_is_refused(identity: Identity, tax: Department) -> None:
    form = form_for(sign(tax, claims_for(tax, identity)), scope="exchange:query tongban:admin")

    refusal = await assert_refused(identity, form, "invalid_scope")

    assert "tongban:admin" in refusal.detail


async def test_another_grant_type_is_refused(identity: Identity, tax: Department) -> None:
    form = form_for(sign(tax, claims_for(tax, identity)), grant_type="password")

    await assert_refused(identity, form, "unsupported_grant_type")


async def test_a_request_refused_for_its_scope_leaves_its_assertion_unused(
    identity: Identity, tax: Department
) -> None:
    assertion = sign(tax, claims_for(tax, identity))
    await identity.refused(form_for(assertion, scope="health:read"))

    response = await identity.grant(form_for(assertion, scope="exchange:query"))

    assert response.scope == "exchange:query"


async def test_refusals_write_nothing(identity: Identity, tax: Department) -> None:
    expired = claims_for(tax, identity, exp=int(time.time()) - 60)
    await identity.refused(form_for(sign(tax, expired)))
    beyond = form_for(sign(tax, claims_for(tax, identity)), scope="health:read")
    await identity.refused(beyond)

    assert await identity.sql("SELECT jti FROM client_assertion_jtis") == []


async def test_extra_claims_cannot_replace_registered_ones(identity: Identity) -> None:
    async with identity.app.state.sessionmaker() as session, session.begin():
        with pytest.raises(ValueError, match="may not replace"):
            await issue_access_token(
                session,
                vault=identity.app.state.key_vault,
                issuer=identity.settings.issuer,
                subject="dept-tax-1",
                audience=AUDIENCE,
                scope=[],
                acr=None,
                amr=(),
                auth_time=None,
                node="440300",
                extra_claims={"sub": "someone-else"},
            )


# -- over HTTP ----------------------------------------------------------------------------
# The real POST /oauth/token belongs to the token endpoint, which dispatches on grant_type;
# this stand-in does what it does for client_credentials: read the form, run the grant, and
# answer an OAuth error as a problem (committing, not rolling back), never to be cached.

token_router = APIRouter()
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def read_form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").split(";")[0] != "application/x-www-form-urlencoded":
        raise InvalidRequest("send the parameters as application/x-www-form-urlencoded")
    try:
        pairs = parse_qsl((await request.body()).decode(), strict_parsing=True)
    except ValueError:  # UnicodeDecodeError included
        raise InvalidRequest("the form is malformed") from None
    form = dict(pairs)
    if len(form) != len(pairs):
        raise InvalidRequest("a parameter is repeated")  # RFC 6749 §3.2
    return form


@token_router.post("/oauth/token", response_model=TokenResponse)
async def token(request: Request, session: SessionDep) -> Response:
    state = request.app.state
    try:
        tokens = await service.client_credentials_grant(
            session,
            form=await read_form(request),
            vault=state.key_vault,
            settings=state.settings,
            now=datetime.now(UTC),
        )
    except OAuthError as error:
        return problem_response(
            error.status,
            error.title,
            error.detail,
            type_slug=error.type_slug,
            headers=NO_STORE,
            **error.extensions,
        )
    return JSONResponse(tokens.model_dump(), headers=NO_STORE)


@pytest.fixture
async def token_client(identity: Identity) -> AsyncIterator[httpx.AsyncClient]:
    app = create_base_app(
        settings=identity.settings, title="token", description="", routers=[token_router]
    )
    app.state.sessionmaker = identity.app.state.sessionmaker
    app.state.key_vault = identity.app.state.key_vault
    async with running_app(app) as client:
        yield client


async def test_over_http_a_department_gets_a_bearer_token_not_to_be_cached(
    identity: Identity, tax: Department, token_client: httpx.AsyncClient
) -> None:
    assertion = sign(tax, claims_for(tax, identity))

    response = await token_client.post("/oauth/token", data=form_for(assertion))

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    answer = await identity.client.get(
        "/.well-known/openid-configuration",
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert answer.status_code == 200


async def test_over_http_a_refusal_is_a_problem_with_an_oauth_error(
    identity: Identity, tax: Department, token_client: httpx.AsyncClient
) -> None:
    assertion = sign(tax, claims_for(tax, identity, aud="https://elsewhere.example"))

    response = await token_client.post("/oauth/token", data=form_for(assertion))

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["error_description"] == body["detail"]
    assert await identity.sql("SELECT jti FROM client_assertion_jtis") == []


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"grant_type=client_credentials&&&", "application/x-www-form-urlencoded"),
        (b"\xff\xfe", "application/x-www-form-urlencoded"),
        (b'{"grant_type": "client_credentials"}', "application/json"),
    ],
)
async def test_over_http_a_malformed_form_is_a_400_problem(
    token_client: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    response = await token_client.post(
        "/oauth/token", content=content, headers={"content-type": content_type}
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["error"] == "invalid_request"
