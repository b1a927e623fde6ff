"""The token matrix against every protected route of every service.

Every route whose OpenAPI declares the bearer scheme is called with each kind of bad token:
signed by a key that is not published, `alg: none`, HS256 with the public key as secret,
expired, not yet valid, for another audience or issuer, with an unknown `kid`, with a
tampered payload, and from a node not in the directory. Each answer must be 401 problem+json
with a bearer challenge, and no service may write an event because of one. Routes are read
from the apps themselves, so a route added later is covered without touching this file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tongban_exchange.main import create_app as create_exchange
from tongban_exchange.settings import ExchangeSettings
from tongban_identity.keys import service as keys_service
from tongban_identity.main import create_app as create_identity
from tongban_identity.sessions.testing import fast_hasher
from tongban_identity.settings import IdentitySettings
from tongban_kit.auth.testing import LocalIssuer
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import running_app
from tongban_registration.main import create_app as create_registration
from tongban_registration.settings import RegistrationSettings

PROBLEM = "application/problem+json"


@dataclass
class TrustedKey:
    """What a service trusts: the signing key it publishes, and the claims it expects."""

    private_key: ec.EllipticCurvePrivateKey
    kid: str
    issuer: str
    audience: str
    node: str

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        values = {
            "iss": self.issuer,
            "sub": "person-matrix",
            "aud": self.audience,
            "exp": now + 300,
            "iat": now,
            "nbf": now,
            "jti": uuid.uuid4().hex,
            "scope": "",
            "acr": "high",
            "amr": ["pwd", "hwk"],
            "auth_time": now,
            "node": self.node,
        }
        return values | overrides

    def sign(self, claims: dict[str, Any], key: ec.EllipticCurvePrivateKey | None = None) -> str:
        return jwt.encode(
            claims,
            key or self.private_key,
            algorithm="ES256",
            headers={"kid": self.kid, "typ": "at+jwt"},
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _alg_none(trusted: TrustedKey, scope: str) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": trusted.kid}).encode())
    payload = _b64(json.dumps(trusted.claims(scope=scope)).encode())
    return f"{header}.{payload}."


def _hs256_with_public_key(trusted: TrustedKey, scope: str) -> str:
    public_pem = trusted.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": trusted.kid}).encode())
    payload = _b64(json.dumps(trusted.claims(scope=scope)).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(mac)}"


def _tampered(trusted: TrustedKey, scope: str) -> str:
    header, _, signature = trusted.sign(trusted.claims(scope="")).split(".")
    elevated = _b64(json.dumps(trusted.claims(scope=scope)).encode())
    return f"{header}.{elevated}.{signature}"


def _unknown_kid(trusted: TrustedKey, scope: str) -> str:
    stranger = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(
        trusted.claims(scope=scope),
        stranger,
        algorithm="ES256",
        headers={"kid": f"unknown-{uuid.uuid4().hex[:8]}", "typ": "at+jwt"},
    )


BadToken = Callable[[TrustedKey, str], str]
BAD_TOKENS: dict[str, BadToken] = {
    "signed by an unpublished key": lambda t, s: t.sign(
        t.claims(scope=s), ec.generate_private_key(ec.SECP256R1())
    ),
    "alg none": _alg_none,
    "HS256 with the public key": _hs256_with_public_key,
    "expired": lambda t, s: t.sign(t.claims(scope=s, exp=int(time.time()) - 600)),
    "not yet valid": lambda t, s: t.sign(t.claims(scope=s, nbf=int(time.time()) + 600)),
    "wrong audience": lambda t, s: t.sign(t.claims(scope=s, aud="tongban:999999")),
    "wrong issuer": lambda t, s: t.sign(t.claims(scope=s, iss="https://evil.example/identity")),
    "unknown kid": _unknown_kid,
    "tampered payload": _tampered,
    # Well formed and signed, by a node the directory does not list: its issuer, its node
    # code, its own key.
    "from a node not in the directory": lambda t, s: jwt.encode(
        t.claims(scope=s, iss="https://999999.node.example/api/identity", node="999999"),
        ec.generate_private_key(ec.SECP256R1()),
        algorithm="ES256",
        headers={"kid": "999999-1", "typ": "at+jwt"},
    ),
}


def protected_routes(app: FastAPI) -> list[tuple[str, str, str]]:
    """(method, concrete path, scopes wanted) of every route declaring the bearer scheme."""
    routes = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            if not any(
                "HTTPBearer" in requirement for requirement in operation.get("security", [])
            ):
                continue
            concrete = path
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    fmt = parameter.get("schema", {}).get("format")
                    value = str(uuid.uuid4()) if fmt == "uuid" else "91440300MA5G0X0X0X"
                    concrete = concrete.replace("{" + parameter["name"] + "}", value)
            routes.append((method.upper(), concrete, operation.get("summary", path)))
    return routes


@dataclass
class ServiceUnderTest:
    name: str
    client: httpx.AsyncClient
    routes: list[tuple[str, str, str]]
    trusted: TrustedKey
    database: str


@pytest.fixture
async def services(
    make_database: Any, node_settings: NodeSettings, token_issuer: LocalIssuer
) -> AsyncIterator[list[ServiceUnderTest]]:
    local = TrustedKey(
        token_issuer.key.private_key,
        token_issuer.key.kid,
        token_issuer.issuer,
        token_issuer.audience,
        token_issuer.node,
    )
    identity_db = await make_database("tongban_identity:migrations")
    registration_db = await make_database("tongban_registration:migrations")
    exchange_db = await make_database("tongban_exchange:migrations")
    identity = create_identity(
        IdentitySettings(database_url=identity_db, node=node_settings, run_workers=False)
    )
    identity.state.password_hasher = fast_hasher()
    registration = create_registration(
        RegistrationSettings(database_url=registration_db, node=node_settings, run_workers=False)
    )
    exchange = create_exchange(
        ExchangeSettings(database_url=exchange_db, node=node_settings, run_workers=False)
    )
    async with (
        running_app(identity) as identity_client,
        running_app(registration) as registration_client,
        running_app(exchange) as exchange_client,
    ):
        async with identity.state.sessionmaker() as session, session.begin():
            active = await keys_service.active_key(session, vault=identity.state.key_vault)
        own = TrustedKey(
            active.private_key,
            active.kid,
            node_settings.token_issuer,
            node_settings.token_audience,
            node_settings.node_code,
        )
        yield [
            ServiceUnderTest(
                "identity", identity_client, protected_routes(identity), own, identity_db
            ),
            ServiceUnderTest(
                "registration",
                registration_client,
                protected_routes(registration),
                local,
                registration_db,
            ),
            ServiceUnderTest(
                "exchange", exchange_client, protected_routes(exchange), local, exchange_db
            ),
        ]


async def _outbox_rows(database: str) -> int:
    engine = create_async_engine(database)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(text("SELECT count(*) FROM tongban_outbox")) or 0)
    finally:
        await engine.dispose()


async def test_every_protected_route_of_every_service_refuses_every_bad_token(
    services: list[ServiceUnderTest],
) -> None:
    before = {s.name: await _outbox_rows(s.database) for s in services}
    failures = []
    tried = 0
    for service in services:
        assert service.routes, f"{service.name} declares no protected route"
        for method, path, _ in service.routes:
            for kind, make in BAD_TOKENS.items():
                token = make(service.trusted, "tongban:admin identity:sign exchange:acknowledge")
                response = await service.client.request(
                    method, path, headers={"Authorization": f"Bearer {token}"}, json={}
                )
                tried += 1
                challenge = response.headers.get("www-authenticate", "")
                if (
                    response.status_code != 401
                    or response.headers.get("content-type") != PROBLEM
                    or not challenge.startswith("Bearer")
                ):
                    failures.append(
                        f"{service.name} {method} {path} [{kind}]: {response.status_code}"
                    )

    assert not failures, "\n".join(failures)
    assert tried >= 9 * 10  # nine kinds over the routes of three services
    after = {s.name: await _outbox_rows(s.database) for s in services}
    assert after == before


async def test_the_good_token_of_the_matrix_is_accepted(services: list[ServiceUnderTest]) -> None:
    """The control: the same claims, properly signed, pass authentication on each service (so
    the refusals above are the tokens' fault, not the harness's)."""
    for service in services:
        method, path, _ = service.routes[0]
        token = service.trusted.sign(service.trusted.claims(scope="tongban:admin"))
        response = await service.client.request(
            method, path, headers={"Authorization": f"Bearer {token}"}, json={}
        )
        assert response.status_code != 401, f"{service.name} {method} {path}: {response.text}"
