"""Checkpoints: the message log's head is signed by a real identity, as data-exchange's service
account (`identity:sign`), and verification checks the signature offline."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tongban_exchange.log import chain
from tongban_exchange.log.checkpoints import Checkpointer
from tongban_exchange.log.signatures import fetch_keys
from tongban_exchange.main import create_app
from tongban_exchange.settings import ExchangeSettings
from tongban_identity.main import create_app as create_identity
from tongban_identity.sessions.testing import fast_hasher
from tongban_identity.settings import IdentitySettings
from tongban_kit.auth.client import generate_service_key
from tongban_kit.db import build_engine, build_sessionmaker
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import running_app, serving_app


@pytest.fixture
async def identity(
    make_database, node_settings: NodeSettings
) -> AsyncIterator[tuple[NodeSettings, str]]:  # type: ignore[no-untyped-def]
    """A real identity on a real port; yields the node settings that trust it and its database."""
    database: str = await make_database("tongban_identity:migrations")
    app = create_identity(
        IdentitySettings(database_url=database, node=node_settings, run_workers=False)
    )
    app.state.password_hasher = fast_hasher()
    async with serving_app(app) as url:
        node = node_settings.model_copy(
            update={"identity_url": url, "jwks_url": f"{url}/.well-known/jwks.json"}
        )
        yield node, database


def enrol(identity_database: str, key_file: Path) -> str:
    """What `tongban node up` does for a service with client scopes."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "tongban_identity.departments", "service-account"),
            *("--service", "exchange", "--scopes", "identity:sign identity:pairwise:derive"),
            *("--key-file", str(key_file)),
        ],
        env={**os.environ, "TONGBAN_IDENTITY_DATABASE_URL": identity_database},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


async def test_the_head_is_signed_by_identity_and_checked_offline(
    identity: tuple[NodeSettings, str], database: str, tmp_path: Path
) -> None:
    node, identity_database = identity
    key_file = tmp_path / "exchange.pem"
    generate_service_key(key_file)
    settings = ExchangeSettings(
        database_url=database,
        node=node,
        client_id=enrol(identity_database, key_file),
        client_key_file=key_file,
        run_workers=False,
    )
    app = create_app(settings)
    engine = build_engine(database, pool_size=2)
    sessionmaker = build_sessionmaker(engine)
    async with running_app(app):
        async with sessionmaker() as session, session.begin():
            for n in range(3):
                await chain.append(
                    session,
                    chain.Message("publish", "tax", "exchange", "d.v1", f"e{n}", b"{}"),
                )
        checkpoint = await Checkpointer(app.state.exchange, sessionmaker).checkpoint()
        again = await Checkpointer(app.state.exchange, sessionmaker).checkpoint()
        async with httpx.AsyncClient() as http:
            keys = await fetch_keys(http, node.identity_url)
        async with sessionmaker() as session:
            intact = await chain.verify(session, keys)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE log_checkpoints SET jws = jws || 'x'"))
        async with sessionmaker() as session:
            forged = await chain.verify(session, keys)
    await engine.dispose()

    assert checkpoint is not None
    assert (checkpoint.head_seq, checkpoint.kid.startswith("doc-")) == (3, True)
    assert again is None  # the head did not move
    assert intact.ok
    assert (intact.checkpoints, intact.signatures_checked) == (1, True)
    assert [(f.seq, "signature" in f.problem or "JWS" in f.problem) for f in forged.findings] == [
        (3, True)
    ]
