"""Migrations run by several processes at once (replicas starting together) all succeed."""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg

from tongban_kit.db.engine import libpq_dsn
from tongban_kit.testing.plugin import MakeDatabase

# Any service's migrations serve; identity's are the longest chain.
SERVICE, MIGRATIONS = "identity", "tongban_identity:migrations"


async def _revisions(url: str) -> list[str]:
    connection = await asyncpg.connect(libpq_dsn(url))
    try:
        rows = await connection.fetch("SELECT version_num FROM alembic_version")
    finally:
        await connection.close()
    return sorted(row["version_num"] for row in rows)


async def _tongban_db_upgrade(url: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tongban_kit.cli", "db", "upgrade", "--service", SERVICE),
        env={**os.environ, f"TONGBAN_{SERVICE.upper()}_DATABASE_URL": url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode(errors="replace")


async def test_concurrent_upgrades_of_one_database_serialise_and_all_succeed(
    make_database: MakeDatabase,
) -> None:
    url = await make_database(None)

    # Four processes at once, as four replicas' init containers would: without the lock two of
    # them create the same tables and one fails with "already exists".
    results = await asyncio.gather(*(_tongban_db_upgrade(url) for _ in range(4)))

    assert [code for code, _ in results] == [0, 0, 0, 0], [out for _, out in results]
    reference = await make_database(MIGRATIONS)
    assert await _revisions(url) == await _revisions(reference)
