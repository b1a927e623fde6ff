"""Data-exchange for ``exchange_routing.py``: its database, settings, grants and replicas.

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

import httpx
import uvloop
from _common import MP, Infra, quiet_logs
from sqlalchemy.engine import make_url

from tongban_exchange.main import create_app
from tongban_exchange.routing.consumer import CONSUMER
from tongban_exchange.settings import ExchangeSettings
from tongban_kit.auth.testing import LocalIssuer
from tongban_kit.db.migrations import ensure_database, upgrade
from tongban_kit.kafka import TopicAdmin
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import serving_app


async def exchange_database(infra: Infra) -> str:
    """Data-exchange's database, migrated: ``<the bench's database>_exchange``."""
    url = make_url(infra.database_url)
    name = f"{url.database}_exchange"
    exchange_url = url.set(database=name).render_as_string(hide_password=False)
    infra.databases.append(exchange_url)
    await ensure_database(exchange_url)
    await asyncio.to_thread(upgrade, "tongban_exchange:migrations", exchange_url)
    return exchange_url


def exchange_settings(
    node: NodeSettings, database: str, enrolment: dict[str, Any] | None = None
) -> ExchangeSettings:
    """Every replica's settings; ``enrolment``: its client id and key file at identity."""
    return ExchangeSettings(
        database_url=database, node=node, database_pool_size=20, **(enrolment or {})
    )


def department_token(issuer: LocalIssuer, code: str) -> str:
    """A department's token for data-exchange (``exchange:subscribe``)."""
    return issuer.mint(
        drop=("acr", "amr", "auth_time"),
        sub=f"dept-{code}",
        client_id=f"dept-{code}",
        department=code,
        department_name=code,
        scope="exchange:subscribe",
    )


async def grant_departments(base_url: str, issuer: LocalIssuer, dataset: str, hook: str) -> None:
    """Grant ``dataset`` to tax (Kafka), social security (webhook to ``hook``) and statistics
    (pull), each with the legal representative among its fields."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        for code, delivery in (
            ("tax", {"mode": "kafka"}),
            ("social-security", {"mode": "webhook", "url": hook}),
            ("statistics", {"mode": "pull"}),
        ):
            response = await client.post(
                "/v1/grants",
                json={
                    "dataset": dataset,
                    "purpose": "benchmark",
                    "legal_basis": "benchmark",
                    "fields": ["uscc", "name", "legal_representative"],
                    "delivery": delivery,
                },
                headers={"Authorization": f"Bearer {department_token(issuer, code)}"},
            )
            response.raise_for_status()


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

    def __init__(
        self, node: NodeSettings, database: str, count: int, enrolment: dict[str, Any] | None
    ) -> None:
        self.node = node
        self._children = []
        for _ in range(count):
            parent, child = MP.Pipe()
            process = MP.Process(
                target=_replica_main,
                args=(node.model_dump(), database, enrolment, child),
                daemon=True,
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


def _replica_main(
    node_fields: dict[str, Any],
    database: str,
    enrolment: dict[str, Any] | None,
    conn: Connection,
) -> None:
    quiet_logs()
    node = NodeSettings(**node_fields)
    uvloop.run(_replica(exchange_settings(node, database, enrolment), conn))


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
