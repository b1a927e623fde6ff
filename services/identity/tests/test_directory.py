"""The central directory: one-time enrolment tokens, enrolment, and the signed document."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tongban_identity.main import create_app
from tongban_identity.sessions.testing import SignInDriver, running_identity
from tongban_identity.settings import IdentitySettings
from tongban_kit.auth.node_keys import development_node_key, public_jwk
from tongban_kit.settings import NodeSettings
from tongban_kit.testing.apps import serving_app

SHENZHEN_KEY = development_node_key("440300")
CENTRAL_JWK = public_jwk(development_node_key("100000"))


def directory_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TONGBAN_IDENTITY_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "tongban_identity.nodes", *args],
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
async def central(database: str, node_settings: NodeSettings) -> AsyncIterator[SignInDriver]:
    node = node_settings.model_copy(update={"node_code": "100000"})
    async with running_identity(
        database, node, run_workers=False, node_name="中央", gateway_url="http://central:8000"
    ) as driver:
        yield driver


def enrolment(token: str, code: str = "440300") -> dict[str, Any]:
    return {
        "token": token,
        "code": code,
        "name": "深圳市",
        "gateway_url": "http://shenzhen:8000/",
        "token_issuer": "http://shenzhen:8000/api/identity",
        "jwks": {"keys": [public_jwk(SHENZHEN_KEY)]},
    }


def issue(database: str, code: str = "440300") -> str:
    done = directory_cli(database, "issue-token", "--code", code)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert token.startswith("tbe_")
    return token


async def test_a_node_enrols_once_with_its_token_and_is_in_the_signed_directory(
    central: SignInDriver, database: str
) -> None:
    token = issue(database)

    enrolled = await central.client.post("/v1/nodes/enrolments", json=enrolment(token))
    again = await central.client.post("/v1/nodes/enrolments", json=enrolment(token))
    document = await central.client.get("/.well-known/tongban-directory.jwt")

    assert enrolled.status_code == 201, enrolled.text
    assert enrolled.json()["directory_jwks"] == {"keys": [CENTRAL_JWK]}
    assert again.status_code == 401
    assert again.headers["content-type"] == "application/problem+json"
    assert document.headers["content-type"].startswith("application/jwt")
    header = jwt.get_unverified_header(document.text)
    assert (header["typ"], header["kid"]) == ("tongban-directory+jwt", CENTRAL_JWK["kid"])
    claims = jwt.decode(
        document.text, development_node_key("100000").public_key(), algorithms=["ES256"]
    )
    assert claims["iss"] == "tongban:node:100000"
    assert claims["exp"] - claims["iat"] == 600
    central_entry, shenzhen = claims["nodes"]
    assert (central_entry["code"], central_entry["name"]) == ("100000", "中央")
    assert central_entry["gateway_url"] == "http://central:8000"
    assert shenzhen["code"] == "440300"
    assert shenzhen["gateway_url"] == "http://shenzhen:8000"
    assert shenzhen["jwks"]["keys"][0]["kid"] == public_jwk(SHENZHEN_KEY)["kid"]
    assert shenzhen["status"] == "active"
    listed = directory_cli(database, "list")
    assert "440300\tactive\thttp://shenzhen:8000\t深圳市" in listed.stdout


async def test_a_token_is_for_one_node_code_and_private_keys_are_refused(
    central: SignInDriver, database: str
) -> None:
    token = issue(database, "310000")
    private = enrolment(token, "310000")
    private["jwks"]["keys"][0]["d"] = "AAAA"

    wrong_code = await central.client.post("/v1/nodes/enrolments", json=enrolment(token))
    unknown = await central.client.post("/v1/nodes/enrolments", json=enrolment("tbe_" + "x" * 40))
    with_private_key = await central.client.post("/v1/nodes/enrolments", json=private)
    right = await central.client.post("/v1/nodes/enrolments", json=enrolment(token, "310000"))

    assert (wrong_code.status_code, unknown.status_code) == (401, 401)
    assert with_private_key.status_code == 422
    assert right.status_code == 201


async def test_only_the_central_node_keeps_a_directory(
    database: str, node_settings: NodeSettings
) -> None:
    async with running_identity(database, node_settings, run_workers=False) as regional:
        document = await regional.client.get("/.well-known/tongban-directory.jwt")
        enrol = await regional.client.post("/v1/nodes/enrolments", json=enrolment("t" * 20))

    assert (document.status_code, enrol.status_code) == (404, 404)


def test_tokens_are_issued_for_regional_codes_only(database: str) -> None:
    done = directory_cli(database, "issue-token", "--code", "100000")

    assert done.returncode == 1
    assert "division code" in done.stderr


async def test_a_regional_operator_enrols_with_the_command_and_a_second_key_while_rotating(
    database: str, node_settings: NodeSettings, tmp_path: Path
) -> None:
    central_node = node_settings.model_copy(update={"node_code": "100000"})
    app = create_app(IdentitySettings(database_url=database, node=central_node, run_workers=False))

    async def behind_gateway(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "path": scope["path"].removeprefix("/api/identity")}
        await app(scope, receive, send)

    following = ec.generate_private_key(ec.SECP256R1())
    next_key = tmp_path / "next.pem"
    next_key.write_bytes(
        following.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    anchor = tmp_path / "central-jwks.json"
    token = issue(database)
    async with serving_app(behind_gateway) as central_url:  # type: ignore[arg-type]
        env = {
            **os.environ,
            "TONGBAN_NODE_CODE": "440300",
            "TONGBAN_IDENTITY_NODE_NAME": "深圳市",
            "TONGBAN_TOKEN_ISSUER": "http://shenzhen:8000/api/identity",
        }
        done = await asyncio.to_thread(
            subprocess.run,
            [
                *(sys.executable, "-m", "tongban_identity.nodes", "enrol"),
                *("--central", central_url, "--token", token),
                *("--anchor-file", str(anchor), "--next-key-file", str(next_key)),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        async with httpx.AsyncClient() as client:
            document = await client.get(
                f"{central_url}/api/identity/.well-known/tongban-directory.jwt"
            )

    assert done.returncode == 0, done.stderr
    assert "enrolled 440300 深圳市 at http://shenzhen:8000" in done.stdout
    assert json.loads(anchor.read_text()) == {"keys": [CENTRAL_JWK]}
    (shenzhen,) = [
        node
        for node in jwt.decode(document.text, options={"verify_signature": False})["nodes"]
        if node["code"] == "440300"
    ]
    kids = [key["kid"] for key in shenzhen["jwks"]["keys"]]
    assert kids == [public_jwk(SHENZHEN_KEY)["kid"], public_jwk(following)["kid"]]
