"""Service accounts: a node service enrolled with `departments service-account` gets tokens
by private_key_jwt through the kit's ServiceTokens and calls identity's protected endpoints."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tongban_identity.main import create_app
from tongban_identity.sessions.testing import fast_hasher
from tongban_identity.settings import IdentitySettings
from tongban_kit.auth.client import generate_service_key, service_key_jwks
from tongban_kit.errors import ServiceUnavailable
from tongban_kit.service import create_service_app
from tongban_kit.settings import NodeSettings, ServiceSettings
from tongban_kit.testing import running_app, serving_app


def enrol(database_url: str, key_file: Path, scopes: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TONGBAN_IDENTITY_DATABASE_URL": database_url}
    return subprocess.run(
        [
            *(sys.executable, "-m", "tongban_identity.departments", "service-account"),
            *("--service", "registration", "--scopes", scopes, "--key-file", str(key_file)),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
async def database(make_database) -> str:  # type: ignore[no-untyped-def]
    url: str = await make_database("tongban_identity:migrations")
    return url


@pytest.fixture
async def identity(database: str, node_settings: NodeSettings) -> AsyncIterator[NodeSettings]:
    """Identity on a real port; yields the node settings a service of this node would have."""
    app = create_app(IdentitySettings(database_url=database, node=node_settings, run_workers=False))
    app.state.password_hasher = fast_hasher()
    async with serving_app(app) as url:
        # Services trust this identity: its issuer, its keys, its internal address.
        yield node_settings.model_copy(
            update={"identity_url": url, "jwks_url": f"{url}/.well-known/jwks.json"}
        )


signing = APIRouter()


@signing.post("/sign")
async def sign(request: Request, body: dict[str, str]) -> Any:
    """What registration does with an e-licence: ask identity to sign its digest."""
    tokens = request.app.state.service_tokens
    node = request.app.state.settings.node
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{node.identity_url}/v1/internal/signatures",
            json={"document_sha256": body["sha256"], "document_type": "e-licence"},
            headers=await tokens.headers(),
        )
    return {"status": response.status_code, "body": response.json()}


async def test_an_enrolled_service_gets_a_token_and_identity_signs_for_it(
    identity: NodeSettings, database: str, make_database: Any, tmp_path: Path
) -> None:
    key_file = tmp_path / "clients" / "registration.pem"  # made by the first enrolment
    first = enrol(database, key_file, "identity:sign")
    key = key_file.read_bytes()
    again = enrol(database, key_file, "identity:sign identity:verify")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "svc-registration"
    assert again.stdout == first.stdout  # the same client, brought up to date
    assert key_file.read_bytes() == key  # and the same key
    settings = ServiceSettings(
        service_name="probe",
        database_url=await make_database(None),
        run_workers=False,
        client_id=first.stdout.strip(),
        client_key_file=key_file,
        node=identity,
    )
    service = create_service_app(
        settings=settings, title="probe", description="", routers=[signing]
    )
    digest = hashlib.sha256(b"business licence 91440300MA5XXXXXX").hexdigest()

    async with running_app(service) as client:
        signed = (await client.post("/sign", json={"sha256": digest})).json()
        tokens = service.state.service_tokens
        token = await tokens.token()
        assert await tokens.token() == token  # cached, not fetched per call

    assert signed["status"] == 201, signed
    assert signed["body"]["document_sha256"] == digest
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == first.stdout.strip()
    assert set(claims["scope"].split()) <= {"identity:sign", "identity:verify"}
    engine = create_async_engine(database)
    async with engine.connect() as conn:
        scopes = await conn.scalar(
            text("SELECT scopes FROM department_clients WHERE code = 'svc-registration'")
        )
    await engine.dispose()
    assert scopes == ["identity:sign", "identity:verify"]


async def test_a_service_whose_key_identity_does_not_hold_gets_a_clear_503(
    identity: NodeSettings, database: str, make_database: Any, tmp_path: Path
) -> None:
    enrolled, impostor = tmp_path / "enrolled.pem", tmp_path / "impostor.pem"
    client_id = enrol(database, enrolled, "identity:sign").stdout.strip()
    generate_service_key(impostor)
    settings = ServiceSettings(
        service_name="probe",
        database_url=await make_database(None),
        run_workers=False,
        client_id=client_id,
        client_key_file=impostor,
        node=identity,
    )
    service = create_service_app(settings=settings, title="probe", description="", routers=[])

    async with running_app(service):
        with pytest.raises(ServiceUnavailable) as refused:
            await service.state.service_tokens.token()

    assert refused.value.status == 503
    assert "invalid_client" in refused.value.detail


async def test_a_disabled_service_account_stays_disabled(database: str, tmp_path: Path) -> None:
    key_file = tmp_path / "registration.pem"
    assert enrol(database, key_file, "identity:sign").returncode == 0
    env = {**os.environ, "TONGBAN_IDENTITY_DATABASE_URL": database}
    disable = [sys.executable, "-m", "tongban_identity.departments", "disable", "svc-registration"]
    subprocess.run(disable, env=env, check=True, capture_output=True, timeout=60)  # noqa: ASYNC221

    again = enrol(database, key_file, "identity:sign")

    assert again.returncode != 0
    assert "disabled by an operator" in again.stderr


def test_service_keys_are_written_for_the_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "clients" / "svc.pem"
    key = generate_service_key(path)

    assert oct(path.stat().st_mode & 0o777) == "0o600"
    [jwk] = service_key_jwks(key)["keys"]
    assert "d" not in jwk
    assert service_key_jwks(key) == service_key_jwks(key)  # a stable kid (RFC 7638)
