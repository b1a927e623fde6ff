"""The central directory: one-time enrolment tokens, enrolment, and the signed document."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest

from tongban_identity.sessions.testing import SignInDriver, running_identity
from tongban_kit.auth.node_keys import development_node_key, public_jwk
from tongban_kit.settings import NodeSettings

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
