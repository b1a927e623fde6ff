"""The operators' command line enrols, lists and disables departments in identity's database,
with the admin API's rules."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from jwt.algorithms import OKPAlgorithm
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

TAX_NAME = "国家税务总局深圳市税务局"


def departments_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TONGBAN_IDENTITY_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "tongban_identity.departments", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def clients(database_url: str) -> list[tuple[Any, ...]]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT client_id, code, name, scopes, disabled_at FROM department_clients")
            )
            return [tuple(row) for row in rows]
    finally:
        await engine.dispose()


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    key = ed25519.Ed25519PrivateKey.generate()
    jwk = {**OKPAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "tax-1"}
    path = tmp_path / "tax-jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return path


@pytest.fixture
async def database(make_database) -> str:  # type: ignore[no-untyped-def]
    url: str = await make_database("tongban_identity:migrations")
    return url


def create(
    database: str, jwks_file: Path, *, code: str = "tax"
) -> subprocess.CompletedProcess[str]:
    return departments_cli(
        database,
        "create",
        "--code",
        code,
        "--name",
        TAX_NAME,
        "--scopes",
        "exchange:subscribe exchange:query",
        "--jwks-file",
        str(jwks_file),
    )


async def test_create_enrols_a_department_and_prints_its_client_id(
    database: str, jwks_file: Path
) -> None:
    result = create(database, jwks_file)

    assert result.returncode == 0, result.stderr
    client_id = result.stdout.strip()
    assert re.fullmatch(r"dept-tax-[0-9a-f]{12}", client_id)
    assert await clients(database) == [
        (client_id, "tax", TAX_NAME, ["exchange:subscribe", "exchange:query"], None)
    ]


async def test_list_shows_a_department_until_it_is_disabled(database: str, jwks_file: Path) -> None:
    client_id = create(database, jwks_file).stdout.strip()

    listed = departments_cli(database, "list")
    disabled = departments_cli(database, "disable", client_id)
    listed_after = departments_cli(database, "list")

    assert client_id in listed.stdout
    assert disabled.returncode == 0
    assert listed_after.stdout == ""
    ((*_, disabled_at),) = await clients(database)
    assert disabled_at is not None


async def test_a_bad_enrolment_is_refused_with_the_reason_and_writes_nothing(
    database: str, jwks_file: Path
) -> None:
    result = create(database, jwks_file, code="Tax Bureau")

    assert result.returncode != 0
    assert "code" in result.stderr
    assert await clients(database) == []


async def test_a_jwks_file_with_a_private_key_is_refused(database: str, tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    private = {**OKPAlgorithm.to_jwk(key, as_dict=True), "kid": "tax-1"}
    path = tmp_path / "leaked.json"
    path.write_text(json.dumps({"keys": [private]}))

    result = create(database, path)

    assert result.returncode != 0
    assert "private key material" in result.stderr
    assert private["d"] not in result.stderr
    assert await clients(database) == []


async def test_a_second_enabled_client_for_one_department_is_refused(
    database: str, jwks_file: Path
) -> None:
    create(database, jwks_file)

    again = create(database, jwks_file)

    assert again.returncode == 1
    assert "already has an enabled client" in again.stderr
    assert len(await clients(database)) == 1
