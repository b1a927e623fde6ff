"""Registration under test: its own database, a broker, tokens from the session's LocalIssuer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import create_async_engine

from tongban_identity.departments.schemas import DepartmentCreate
from tongban_identity.departments.service import ensure_service_account
from tongban_identity.main import create_app as create_identity
from tongban_identity.sessions.testing import fast_hasher
from tongban_identity.settings import IdentitySettings
from tongban_identity.signatures.testing import mint_token, public_jwk
from tongban_kit.auth.client import generate_service_key, service_key_jwks
from tongban_kit.auth.testing import LocalIssuer
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import running_app, serving_app
from tongban_registration.main import create_app
from tongban_registration.settings import RegistrationSettings
from tongban_registration.testing import Flow, Tokens, application


@pytest.fixture
def new_application() -> Callable[..., dict[str, Any]]:
    counter = iter(range(1_000_000))

    def make(**changes: Any) -> dict[str, Any]:
        # A distinct name each time unless the test names one.
        changes.setdefault("name", f"深圳市测试{uuid.uuid4().hex[:8]}{next(counter)}科技有限公司")
        return application(**changes)

    return make


@pytest.fixture
async def database(make_database) -> str:  # type: ignore[no-untyped-def]
    url: str = await make_database("tongban_registration:migrations")
    return url


@pytest.fixture
def registration_settings(database: str, node_settings: NodeSettings) -> RegistrationSettings:
    """Without the relay and consumers: most tests look at HTTP and the database only, and
    stopping a consumer costs a second of teardown."""
    return RegistrationSettings(database_url=database, node=node_settings, run_workers=False)


@pytest.fixture
async def app_client(
    registration_settings: RegistrationSettings,
) -> AsyncIterator[httpx.AsyncClient]:
    """Registration with no default credentials; tests pass tokens per request."""
    async with running_app(create_app(registration_settings)) as client:
        yield client


@pytest.fixture
async def live_client(
    registration_settings: RegistrationSettings,
) -> AsyncIterator[httpx.AsyncClient]:
    """Registration with its outbox relay and consumers running (events reach the broker)."""
    settings = registration_settings.model_copy(update={"run_workers": True})
    async with running_app(create_app(settings)) as client:
        yield client


@pytest.fixture
def live_flow(
    live_client: httpx.AsyncClient, applicant: dict[str, str], officer: dict[str, str]
) -> Flow:
    return Flow(live_client, applicant, officer)


@pytest.fixture
def tokens(token_issuer: LocalIssuer) -> Tokens:
    return Tokens(token_issuer)


@pytest.fixture
def applicant(tokens: Tokens) -> dict[str, str]:
    return tokens.person()


@pytest.fixture
def officer(tokens: Tokens) -> dict[str, str]:
    return tokens.officer()


@pytest.fixture
def flow(app_client: httpx.AsyncClient, applicant: dict[str, str], officer: dict[str, str]) -> Flow:
    return Flow(app_client, applicant, officer)


@pytest.fixture
def sql(database: str) -> Callable[[str], Any]:
    """Run one SQL statement against registration's database (raw checks of what is stored)."""
    from sqlalchemy import text

    async def run(statement: str, **params: Any) -> list[Any]:
        engine = create_async_engine(database)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(statement), params)
                return list(result.fetchall()) if result.returns_rows else []
        finally:
            await engine.dispose()

    return run


@dataclass
class Node:
    """Identity on a real port, and the node settings that point at it."""

    identity: FastAPI
    identity_url: str
    settings: NodeSettings

    async def enrol_registration(
        self, key_file: Path, scopes: tuple[str, ...] = ("identity:sign", "identity:verify")
    ) -> str:
        """What `tongban node up` does for registration: a key of its own, enrolled."""
        key = generate_service_key(key_file)
        enrolment = DepartmentCreate(
            code="svc-registration",
            name="Tongban registration service",
            scopes=list(scopes),
            jwks=service_key_jwks(key),
        )
        async with self.identity.state.sessionmaker() as session, session.begin():
            client = await ensure_service_account(
                session, enrolment=enrolment, node=self.settings.node_code
            )
        return str(client.client_id)

    async def person_with_key(self) -> tuple[dict[str, str], ec.EllipticCurvePrivateKey, str]:
        """A person signed up at identity with a signing key registered: their headers (level
        `substantial`), the private key and its kid."""
        async with httpx.AsyncClient(base_url=self.identity_url) as identity:
            person = await identity.post(
                "/v1/persons",
                json={
                    "resident_id": "11010519491231002X",
                    "name": "张三",
                    "phone": "13800138000",
                    "password": "correct horse battery staple",
                },
            )
            token = await mint_token(self.identity, subject=person.json()["id"], acr="substantial")
            key = ec.generate_private_key(ec.SECP256R1())
            registered = await identity.post(
                "/v1/me/keys",
                json={"jwk": public_jwk(key)},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert registered.status_code == 201, registered.text
        return {"Authorization": f"Bearer {token}"}, key, str(registered.json()["kid"])


@pytest.fixture
async def node(make_database: Any, node_settings: NodeSettings) -> AsyncIterator[Node]:
    """Identity served on a real port; the node's services trust its tokens."""
    database = await make_database("tongban_identity:migrations")
    app = create_identity(
        IdentitySettings(database_url=database, node=node_settings, run_workers=False)
    )
    app.state.password_hasher = fast_hasher()
    async with serving_app(app) as url:
        settings = node_settings.model_copy(
            update={"identity_url": url, "jwks_url": f"{url}/.well-known/jwks.json"}
        )
        yield Node(app, url, settings)
