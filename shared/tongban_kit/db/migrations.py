"""Alembic, driven from code: each service's ``migrations/env.py`` calls ``run_env``.

The local runner upgrades every service on start; production runs ``tongban db upgrade``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tongban_kit.db.engine import libpq_dsn

__all__ = [
    "MIGRATION_LOCK",
    "alembic_config",
    "create_kit_tables",
    "drop_kit_tables",
    "ensure_database",
    "run_env",
    "upgrade",
]


#: pg_advisory_xact_lock key taken by every migration run ("tbmigr"): replicas that start
#: together (Kubernetes init containers, several `tongban db upgrade`) migrate one at a time,
#: and each later one finds the schema already current.
MIGRATION_LOCK = 0x74626D69677200


def alembic_config(script_location: str, database_url: str) -> Config:
    """An Alembic config for one service's migrations (``package:migrations``) and database."""
    config = Config()
    config.set_main_option("script_location", script_location)
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(script_location: str, database_url: str, revision: str = "heads") -> None:
    """Upgrade one service's database (to every head: branches from parallel work apply too).

    Synchronous: run it in a thread from async code."""
    command.upgrade(alembic_config(script_location, database_url), revision)


def run_env(target_metadata: MetaData, *extra: MetaData) -> None:
    """Body of a service's ``env.py``: run its migrations online over asyncpg."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not set; use tongban_kit.db.migrations.upgrade()"

    def do_run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=[target_metadata, *extra])
        with context.begin_transaction():
            # Taken before Alembic reads the current revision, so a waiting run sees the
            # revision the run ahead of it committed.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run_async())


async def ensure_database(database_url: str) -> bool:
    """Create the database a URL names if it does not exist; True if it was created."""
    url = make_url(database_url)
    name = url.database
    assert name, "the database URL names no database"
    server = url.set(database="postgres").render_as_string(hide_password=False)
    admin: Any = await asyncpg.connect(libpq_dsn(server))
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            await admin.execute(f"CREATE DATABASE {quoted}")
        except asyncpg.DuplicateDatabaseError:  # created meanwhile by a concurrent runner
            return False
        return True
    finally:
        await admin.close()


def create_kit_tables() -> None:
    """Create the kit's outbox, inbox and dead-letter tables; call from a first migration."""
    from alembic import op

    from tongban_kit.outbox.tables import kit_metadata

    kit_metadata.create_all(op.get_bind())


def drop_kit_tables() -> None:
    from alembic import op

    from tongban_kit.outbox.tables import kit_metadata

    kit_metadata.drop_all(op.get_bind())
