"""Embedded PostgreSQL and broker: they start, keep (or drop) state, and leave nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tongban_kit.infra import EmbeddedBroker, EmbeddedPostgres, free_port, wait_for_port


@pytest.fixture
def pg_root() -> Iterator[Path]:
    """A scratch directory for data directories, outside pytest's ``tmp_path``.

    As root the server runs as another user, who must be able to walk every parent directory,
    and each new pytest session of the same user resets /tmp/pytest-of-root to mode 0700; a
    concurrent session would make initdb or startup fail there.
    """
    root = Path(tempfile.mkdtemp(prefix="tongban-infra-test-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _postgres_pids(data_dir: Path) -> set[int]:
    """Pids of every postgres process (postmaster and backends) working in ``data_dir``."""
    pids = set()
    for proc in psutil.process_iter(["name", "cwd"]):
        if proc.info["name"] == "postgres" and proc.info["cwd"] == str(data_dir.resolve()):
            pids.add(proc.pid)
    return pids


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def test_free_port_and_wait_for_port() -> None:
    port = free_port()
    with pytest.raises(TimeoutError):
        wait_for_port("127.0.0.1", port, timeout=0.3)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        wait_for_port("127.0.0.1", port, timeout=2)


async def test_postgres_data_survives_restart(pg_root: Path) -> None:
    pg = EmbeddedPostgres(pg_root / "pg", port=free_port())
    with pg:
        assert pg.is_running()
        await _execute(pg.url, "CREATE TABLE note (body text); INSERT INTO note VALUES ('kept')")
    assert not pg.is_running()
    with pg:
        assert [r["body"] for r in await _fetch(pg.url, "SELECT body FROM note")] == ["kept"]
        pg.restart()
        assert [r["body"] for r in await _fetch(pg.url, "SELECT body FROM note")] == ["kept"]
    assert pg.async_url("svc") == f"postgresql+asyncpg://postgres@127.0.0.1:{pg.port}/svc"


async def test_postgres_stop_leaves_no_process(pg_root: Path) -> None:
    data_dir = pg_root / "pg"
    pg = EmbeddedPostgres(data_dir, port=free_port())
    pg.start()
    conn = await asyncpg.connect(pg.url)  # a live backend must go too
    try:
        assert len(_postgres_pids(data_dir)) > 1
        pg.stop()
    finally:
        conn.terminate()
    assert _postgres_pids(data_dir) == set()
    assert not (data_dir / "postmaster.pid").exists()
    pg.stop()  # idempotent


async def test_postgres_takes_over_from_a_leftover_server(pg_root: Path) -> None:
    data_dir = pg_root / "pg"
    old = EmbeddedPostgres(data_dir, port=free_port())
    old.start()
    await _execute(old.url, "CREATE TABLE note (body text); INSERT INTO note VALUES ('kept')")
    new = EmbeddedPostgres(data_dir, port=free_port())
    try:
        new.start()
        assert not old.is_running()
        assert [r["body"] for r in await _fetch(new.url, "SELECT body FROM note")] == ["kept"]
        old.stop()  # must not touch the server that took over
        assert new.is_running()
    finally:
        new.stop()
    assert _postgres_pids(data_dir) == set()


async def test_postgres_starts_over_a_killed_server(pg_root: Path) -> None:
    data_dir = pg_root / "pg"
    pg = EmbeddedPostgres(data_dir, port=free_port())
    pg.start()
    await _execute(pg.url, "CREATE TABLE note (body text); INSERT INTO note VALUES ('kept')")
    os.kill(_postmaster_pid(data_dir), signal.SIGKILL)  # leaves a stale postmaster.pid
    pg.stop()
    assert (data_dir / "postmaster.pid").exists()
    pg.start()
    try:
        assert [r["body"] for r in await _fetch(pg.url, "SELECT body FROM note")] == ["kept"]
    finally:
        pg.stop()


def test_postgres_ignores_a_pid_file_whose_pid_was_reused(pg_root: Path) -> None:
    data_dir = pg_root / "pg"
    pg = EmbeddedPostgres(data_dir, port=free_port())
    pg.start()
    pg.stop()
    # postgres itself would take this live unrelated pid for a running server and refuse.
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        (data_dir / "postmaster.pid").write_text(f"{stranger.pid}\n{data_dir}\n")
        with pg:
            assert pg.is_running()
    finally:
        stranger.kill()
        stranger.wait()


def test_postgres_refuses_a_port_held_by_another_server(pg_root: Path) -> None:
    with EmbeddedPostgres(pg_root / "a", port=free_port()) as first:
        second = EmbeddedPostgres(pg_root / "b", port=first.port)
        with pytest.raises(RuntimeError, match="already in use"):
            second.start()
        assert not second.is_running()
        assert first.is_running()


async def test_broker_roundtrip_then_restart_is_empty() -> None:
    with EmbeddedBroker(port=free_port()) as broker:
        servers = broker.bootstrap_servers
        admin = AIOKafkaAdminClient(bootstrap_servers=servers)
        await admin.start()
        try:
            await admin.create_topics([NewTopic("infra.test", 1, 1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=servers)
        await producer.start()
        try:
            await producer.send_and_wait("infra.test", b"hello")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            "infra.test",
            bootstrap_servers=servers,
            group_id="infra",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            # tansu holds a JoinGroup for half the session timeout; keep it short.
            session_timeout_ms=2_000,
            heartbeat_interval_ms=500,
        )
        await consumer.start()
        try:
            message = await consumer.getone()
            await consumer.commit()
            assert message.value == b"hello"
            assert await consumer.committed(next(iter(consumer.assignment()))) == 1
        finally:
            await consumer.stop()

        broker.restart()
        assert broker.is_running()
        admin = AIOKafkaAdminClient(bootstrap_servers=servers)
        await admin.start()
        try:
            assert await admin.list_topics() == []
        finally:
            await admin.close()
    assert not broker.is_running()


def test_broker_refuses_a_port_held_by_another_broker() -> None:
    with EmbeddedBroker(port=free_port()) as first:
        second = EmbeddedBroker(port=first.port)
        with pytest.raises(RuntimeError, match="Address in use"):
            second.start()
        assert not second.is_running()
        assert first.is_running()


def test_broker_outlives_the_thread_that_started_it() -> None:
    # The parent-death signal is per thread; a short-lived starter must not take it down.
    broker = EmbeddedBroker(port=free_port())
    starter = threading.Thread(target=broker.start)
    starter.start()
    starter.join()
    try:
        time.sleep(0.5)
        assert broker.is_running()
    finally:
        broker.stop()


def test_servers_die_with_their_parent(pg_root: Path) -> None:
    script = textwrap.dedent(
        f"""
        import json, time
        from pathlib import Path
        from tongban_kit.infra import EmbeddedBroker, EmbeddedPostgres, free_port
        pg = EmbeddedPostgres(Path({str(pg_root / "pg")!r}), port=free_port())
        pg.start()
        broker = EmbeddedBroker(port=free_port())
        broker.start()
        print(json.dumps([pg._proc.pid, broker._proc.pid]), flush=True)
        time.sleep(120)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line, parent.communicate()[1]  # the child failed to start its servers
        pids = json.loads(line)
        children = [psutil.Process(pid) for pid in pids]
        children += children[0].children()  # postgres backends and auxiliary processes
    finally:
        parent.kill()
        parent.wait()
    _, alive = psutil.wait_procs(children, timeout=20)
    assert alive == []
    assert _postgres_pids(pg_root / "pg") == set()
