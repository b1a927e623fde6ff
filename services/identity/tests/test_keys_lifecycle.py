"""The key lifecycle around starts: keys survive restarts, replicas starting together make one
active key, rotation is due on start, the rotate command works, and a wrong sealing key stops
identity from starting."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tongban_identity.keys.sealing import KeyUnsealError, KeyVault, key_cipher
from tongban_identity.keys.service import prepare_keys
from tongban_identity.main import create_app
from tongban_identity.settings import IdentitySettings
from tongban_kit.crypto import generate_key_setting
from tongban_kit.db import build_engine, build_sessionmaker
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import running_app


async def key_states(database_url: str) -> dict[str, str]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT kid, state FROM signing_keys"))
            return {kid: state for kid, state in rows}
    finally:
        await engine.dispose()


async def start_and_stop(settings: IdentitySettings) -> None:
    async with running_app(create_app(settings)):
        pass


@pytest.fixture
async def settings(make_database, node_settings: NodeSettings) -> IdentitySettings:  # type: ignore[no-untyped-def]
    url = await make_database("tongban_identity:migrations")
    return IdentitySettings(database_url=url, node=node_settings, run_workers=False)


async def test_a_restart_keeps_the_keys_it_has(settings: IdentitySettings) -> None:
    await start_and_stop(settings)
    first = await key_states(settings.database_url)

    await start_and_stop(settings)

    assert await key_states(settings.database_url) == first
    assert sorted(first.values()) == ["active", "next"]


async def test_replicas_starting_together_make_one_active_and_one_next_key(
    settings: IdentitySettings,
) -> None:
    engine = build_engine(settings.database_url, pool_size=4)
    sessionmaker = build_sessionmaker(engine)
    vault = KeyVault(key_cipher(None))
    try:
        await asyncio.gather(
            *(prepare_keys(sessionmaker, vault=vault, rotation_days=0) for _ in range(4))
        )
    finally:
        await engine.dispose()

    assert sorted((await key_states(settings.database_url)).values()) == ["active", "next"]


async def test_a_start_rotates_when_the_active_key_is_older_than_the_rotation_period(
    settings: IdentitySettings,
) -> None:
    await start_and_stop(settings)
    before = await key_states(settings.database_url)
    engine = create_async_engine(settings.database_url)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE signing_keys SET activated_at = :at WHERE state = 'active'"),
            {"at": datetime.now(UTC) - timedelta(days=31)},
        )
    await engine.dispose()

    await start_and_stop(settings.model_copy(update={"key_rotation_days": 30}))

    after = await key_states(settings.database_url)
    old_active = next(kid for kid, state in before.items() if state == "active")
    old_next = next(kid for kid, state in before.items() if state == "next")
    assert after[old_active] == "retired"
    assert after[old_next] == "active"
    assert sorted(after.values()) == ["active", "next", "retired"]


async def test_a_start_within_the_rotation_period_rotates_nothing(
    settings: IdentitySettings,
) -> None:
    await start_and_stop(settings)
    before = await key_states(settings.database_url)

    await start_and_stop(settings.model_copy(update={"key_rotation_days": 30}))

    assert await key_states(settings.database_url) == before


async def test_the_rotate_command_rotates_the_keys_of_the_configured_database(
    settings: IdentitySettings,
) -> None:
    await start_and_stop(settings)
    env = {**os.environ, "TONGBAN_IDENTITY_DATABASE_URL": settings.database_url}

    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tongban_identity.keys", "rotate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    states = await key_states(settings.database_url)
    active = next(kid for kid, state in states.items() if state == "active")
    assert f"key {active} signs now" in done.stdout
    assert sorted(states.values()) == ["active", "next", "retired"]


async def test_identity_refuses_to_start_when_the_sealing_key_changed(
    settings: IdentitySettings,
) -> None:
    first = SecretStr(generate_key_setting("k1"))
    await start_and_stop(settings.model_copy(update={"key_encryption_key": first}))
    other = SecretStr(generate_key_setting("k1"))

    with pytest.raises(KeyUnsealError, match="does not decrypt"):
        await start_and_stop(settings.model_copy(update={"key_encryption_key": other}))


async def test_a_new_sealing_key_added_to_the_keyring_still_opens_the_old_keys(
    settings: IdentitySettings,
) -> None:
    first = generate_key_setting("k1")
    await start_and_stop(settings.model_copy(update={"key_encryption_key": SecretStr(first)}))
    keyring = SecretStr(f"{first},{generate_key_setting('k2')}")

    await start_and_stop(settings.model_copy(update={"key_encryption_key": keyring}))
