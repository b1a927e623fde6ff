"""Data-exchange replicas for ``exchange_routing.py --replicas N``.

Replica 1 runs in the bench's main process; replicas 2..N are child processes on the same
database and broker, each serving ``create_app(settings)`` on uvloop as the main one does, with
its routing consumer in the same group. ``registration.events`` is created first with a
partition count N divides, so the group splits it evenly.
"""

from __future__ import annotations

import asyncio
import time
from multiprocessing.connection import Connection
from typing import Any

import uvloop
from _common import MP, quiet_logs

from tongban_exchange.main import create_app
from tongban_exchange.routing.consumer import CONSUMER
from tongban_exchange.settings import ExchangeSettings
from tongban_kit.kafka import TopicAdmin
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import serving_app


def exchange_settings(node: NodeSettings, database: str) -> ExchangeSettings:
    """Every replica's settings."""
    return ExchangeSettings(database_url=database, node=node, database_pool_size=20)


async def create_routing_topic(node: NodeSettings, replicas: int) -> int:
    """Create ``registration.events`` before any consumer does, with a partition count the
    replicas divide (3 for one, as a consumer would create it); return that count."""
    partitions = 3 if replicas == 1 else replicas * -(-6 // replicas)  # a multiple, >= 6
    admin = TopicAdmin(node, partitions=partitions)
    await admin.start()
    try:
        await admin.ensure([node.topic("registration.events")])
    finally:
        await admin.close()
    return partitions


class Replicas:
    """Replicas 2..N in child processes (``count`` of them), started and stopped together."""

    def __init__(self, node: NodeSettings, database: str, count: int) -> None:
        self.node = node
        self._children = []
        for _ in range(count):
            parent, child = MP.Pipe()
            process = MP.Process(
                target=_replica_main, args=(node.model_dump(), database, child), daemon=True
            )
            self._children.append((process, parent))

    async def start(self) -> None:
        """Start them; return once every replica's routing consumer, the main process's
        included, is in the group (so no rebalance comes in the middle of the run)."""
        for process, _ in self._children:
            process.start()
        for _, parent in self._children:
            if not await asyncio.to_thread(parent.poll, 120) or parent.recv() != "ready":
                raise SystemExit("a data-exchange replica did not start in two minutes")
        await _routing_group_settled(self.node, len(self._children) + 1)

    def labels(self) -> dict[int, str]:
        """Their pids, as ``cpu_seconds`` takes them: ``data-exchange 2`` and on."""
        return {
            process.pid or 0: f"data-exchange {n}"
            for n, (process, _) in enumerate(self._children, start=2)
        }

    def stop(self) -> None:
        for _, parent in self._children:
            parent.send("exit")
        for process, _ in self._children:
            process.join(20)


def replicas_cpu_rows(
    before: dict[str, float], after: dict[str, float], events: int
) -> list[tuple[str, str]]:
    """With more than one replica, a row of their CPU together, per event."""
    labels = [label for label in after if label.startswith("data-exchange ")]
    if len(labels) < 2:
        return []
    spent = sum(after[label] - before.get(label, 0.0) for label in labels)
    return [
        (
            f"CPU {len(labels)} data-exchange replicas",
            f"{spent:.1f} s, {spent / events * 1000:.3f} ms per event",
        )
    ]


def _replica_main(node_fields: dict[str, Any], database: str, conn: Connection) -> None:
    quiet_logs()
    uvloop.run(_replica(exchange_settings(NodeSettings(**node_fields), database), conn))


async def _replica(settings: ExchangeSettings, conn: Connection) -> None:
    async with serving_app(create_app(settings)):
        conn.send("ready")
        await asyncio.to_thread(conn.recv)  # "exit", once the parent has read the CPU counters


async def _routing_group_settled(node: NodeSettings, members: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=node.kafka_bootstrap_servers)
    await admin.start()
    try:
        give_up = time.monotonic() + 120
        while True:
            (response,) = await admin.describe_consumer_groups([node.topic(CONSUMER)])
            _, _, state, _, _, joined, *_ = response.groups[0]
            if state == "Stable" and len(joined) == members:
                return
            if time.monotonic() > give_up:
                raise SystemExit(f"routing group not settled: {state}, {len(joined)} members")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
