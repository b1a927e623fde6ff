"""The `tongban` command line: commands services contribute, and migrations."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine


def _tongban(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tongban_kit.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _key_states(url: str) -> list[tuple[str, str]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT kid, state FROM signing_keys ORDER BY kid"))
            return [(row.kid, row.state) for row in rows]
    finally:
        await engine.dispose()


async def test_tongban_db_upgrade_then_keys_rotate_through_the_identity_command(
    make_database,  # type: ignore[no-untyped-def]
) -> None:
    url = await make_database(None)  # an empty database: the CLI migrates it
    env = {"TONGBAN_IDENTITY_DATABASE_URL": url}

    upgraded = _tongban("db", "upgrade", "--service", "identity", env=env)
    first = _tongban("keys", "rotate", env=env)
    states_after_first = await _key_states(url)
    second = _tongban("keys", "rotate", env=env)

    assert upgraded.returncode == 0, upgraded.stderr
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert sorted(s for _, s in states_after_first) == ["active", "next", "retired"]
    states = dict(await _key_states(url))
    assert sorted(states.values()) == ["active", "next", "retired", "retired"]
    previous_next = next(k for k, s in states_after_first if s == "next")
    assert states[previous_next] == "active"  # the published next key is the one that signs


def test_unknown_arguments_are_refused() -> None:
    result = _tongban("node", "up", "--bogus", env={})

    assert result.returncode == 2
    assert "unrecognized arguments: --bogus" in result.stderr
