"""Outbox relay throughput: drain a backlog of outbox rows to Kafka, against a direct baseline.

A backlog of ``--events`` rows is written to ``tongban_outbox`` first: the first event through
``add_event`` itself, the rest as a Core bulk insert of exactly the row ``add_event`` writes
(checked against that first row), in transactions of 10,000. Then ``OutboxRelay.run()`` starts
in this process and the clock runs until ``SELECT count(*) FROM tongban_outbox WHERE
published_at IS NULL`` is 0 (the relay's throughput) and, separately, until a consumer
(``build_consumer``, fresh group, own process) has received every event (end to end).

Baseline, same run: an aiokafka producer (``build_producer``) sending the same records (same
key, headers and value sizes) straight to Kafka, all in flight at once; and once more in
batches like the relay (send a batch, wait for its acknowledgements, next batch).

    python bench/relay_throughput.py                    # 50,000 events, batches 500, 2000, 5000
    python bench/relay_throughput.py --batch-size 500 --events 100000
    python bench/relay_throughput.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

from _common import (
    LOGICAL_TOPIC,
    ConsumerProcess,
    Infra,
    infrastructure,
    machine_facts,
    new_event,
    print_block,
    quiet_logs,
    truncate_outbox,
)
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tongban_kit.db import build_engine, build_sessionmaker
from tongban_kit.events import CloudEvent
from tongban_kit.kafka import build_producer
from tongban_kit.observability.metrics import ServiceMetrics
from tongban_kit.outbox import OutboxRelay, add_event, outbox
from tongban_kit.outbox.tables import NOTIFY_CHANNEL

TARGET_EVENTS_PER_S = 10_000.0
INSERT_CHUNK = 10_000


@dataclass
class Run:
    name: str
    events: int
    publish_s: float | None  # relay: backlog drained / baseline: all acks received
    consume_s: float | None  # until the consumer had every event
    received: int
    connect_s: float = 0.0  # relay: until it was connected (listener, producer, admin)
    cpu_note: str = ""

    @property
    def publish_rate(self) -> float:
        return self.events / self.publish_s if self.publish_s else 0.0

    @property
    def consume_rate(self) -> float:
        return self.events / self.consume_s if self.consume_s else 0.0


# -- the backlog ----------------------------------------------------------------------------


def outbox_row(event: CloudEvent) -> dict[str, Any]:
    """The values ``tongban_kit.outbox.writer.add_event`` inserts for ``event``."""
    record = event.to_kafka()
    return {
        "event_id": event.id,
        "event_type": event.type,
        "topic": record.topic,
        "key": record.key,
        "headers": {name: value.decode() for name, value in record.headers},
        "payload": record.value,
    }


async def write_backlog(engine: AsyncEngine, events: list[CloudEvent]) -> float:
    """Insert the backlog; return the seconds it took."""
    began = time.perf_counter()
    sessionmaker = build_sessionmaker(engine)
    async with sessionmaker() as session, session.begin():
        await add_event(session, events[0])  # the reference row, written by the kit itself
    for start in range(1, len(events), INSERT_CHUNK):
        rows = [outbox_row(e) for e in events[start : start + INSERT_CHUNK]]
        async with engine.begin() as conn:
            await conn.execute(insert(outbox), rows)
            await conn.execute(select(func.pg_notify(NOTIFY_CHANNEL, "")))
    elapsed = time.perf_counter() - began
    await _check_rows_match(engine)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE tongban_outbox"))
    return elapsed


async def _check_rows_match(engine: AsyncEngine) -> None:
    """The bulk rows must look exactly like the one ``add_event`` wrote."""
    cols = [outbox.c.event_type, outbox.c.topic, outbox.c.headers, outbox.c.published_at]
    async with engine.connect() as conn:
        first, second = (await conn.execute(select(*cols).order_by(outbox.c.seq).limit(2))).all()
    same = (
        first.event_type == second.event_type
        and first.topic == second.topic
        and sorted(first.headers) == sorted(second.headers)
        and first.published_at is None
        and second.published_at is None
    )
    if not same:
        raise RuntimeError(f"bulk rows differ from add_event's: {first} vs {second}")


# -- phases ---------------------------------------------------------------------------------


async def relay_phase(infra: Infra, args: argparse.Namespace, batch_size: int) -> Run:
    name = f"relay, batch {batch_size}"
    node = infra.node(f"rt{uuid.uuid4().hex[:10]}", outbox_batch_size=batch_size)
    await truncate_outbox(infra.database_url)
    consumer = ConsumerProcess(node, f"relay-{batch_size}", grace_s=30)
    ready = asyncio.create_task(asyncio.to_thread(consumer.start))  # its group join takes ~5 s
    engine = build_engine(infra.database_url)
    watcher = build_engine(infra.database_url, pool_size=1)
    relay_task: asyncio.Task[None] | None = None
    try:
        events = [new_event(i) for i in range(args.events)]
        took = await write_backlog(engine, events)
        print(
            f"  backlog: {args.events:,} rows in {took:.1f}s ({args.events / took:,.0f}/s)",
            flush=True,
        )
        await ready
        relay = OutboxRelay(
            engine=engine, node=node, metrics=ServiceMetrics(), client_id="bench-relay"
        )
        wall0, t0, cpu0 = time.time(), time.perf_counter(), time.process_time()
        relay_task = asyncio.create_task(relay.run())
        connected = asyncio.create_task(_connected_after(relay, t0))
        publish_s = await _wait_drained(watcher, args.events, t0, relay_task, args.timeout)
        relay_cpu = time.process_time() - cpu0
        connected.cancel()
        connect_s = connected.result() if connected.done() and not connected.cancelled() else 0.0
        relay_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay_task
        relay_task = None
        received = await asyncio.to_thread(consumer.finish, args.events)
    finally:
        if relay_task is not None:
            relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay_task
        consumer.kill()
        await engine.dispose()
        await watcher.dispose()
    consume_s = max(received.values()) - wall0 if len(received) >= args.events else None
    cpu_note = _cpu_note(relay_cpu, consumer.cpu_s, publish_s, "relay process")
    return Run(name, args.events, publish_s, consume_s, len(received), connect_s, cpu_note)


async def _connected_after(relay: OutboxRelay, t0: float) -> float:
    while not relay.connected:  # noqa: ASYNC110 - a plain attribute, no event to wait on
        await asyncio.sleep(0.002)
    return time.perf_counter() - t0


def _cpu_note(own_cpu: float, consumer_cpu: float, wall: float | None, who: str) -> str:
    if not wall:
        return ""
    return (
        f"{who} CPU {own_cpu:.2f}s ({own_cpu / wall:.0%} of one core while publishing); "
        f"consumer process CPU {consumer_cpu:.2f}s (since it was ready)"
    )


async def _wait_drained(
    watcher: AsyncEngine, total: int, t0: float, task: asyncio.Task[None], timeout: float
) -> float | None:
    """Poll the backlog until it is empty; return seconds since ``t0`` (None on timeout)."""
    query = text("SELECT count(*) FROM tongban_outbox WHERE published_at IS NULL")
    last_report = t0
    while True:
        async with watcher.connect() as conn:
            left = int(await conn.scalar(query) or 0)
        now = time.perf_counter()
        if left == 0:
            return now - t0
        if task.done():
            task.result()  # the relay died: raise its error
        if now - t0 > timeout:
            print(f"  relay: gave up after {timeout:.0f}s with {left:,} left", flush=True)
            return None
        if now - last_report >= 1.0:
            last_report = now
            done = total - left
            print(f"  [relay] {done:,} published in {now - t0:.1f}s", flush=True)
        await asyncio.sleep(0.1)


async def baseline_phase(infra: Infra, args: argparse.Namespace, batch: int | None) -> Run:
    label = "all in flight" if batch is None else f"batches of {batch}, wait acks"
    node = infra.node(f"bl{uuid.uuid4().hex[:10]}")
    topic = node.topic(LOGICAL_TOPIC)
    consumer = ConsumerProcess(node, "baseline", grace_s=30)
    await asyncio.to_thread(consumer.start)
    producer = build_producer(node, client_id="bench-baseline")
    await producer.start()
    # The same records the relay sends: key, value, and the headers as stored and re-encoded.
    records = [outbox_row(new_event(i)) for i in range(args.events)]
    try:
        wall0, t0, cpu0 = time.time(), time.perf_counter(), time.process_time()
        step = batch or len(records)
        for start in range(0, len(records), step):
            futures = [
                await producer.send(
                    topic,
                    value=row["payload"],
                    key=row["key"],
                    headers=[(n, v.encode()) for n, v in row["headers"].items()],
                )
                for row in records[start : start + step]
            ]
            await asyncio.gather(*futures)
        publish_s = time.perf_counter() - t0
        own_cpu = time.process_time() - cpu0
        received = await asyncio.to_thread(consumer.finish, args.events)
    finally:
        await producer.stop()
        consumer.kill()
    consume_s = max(received.values()) - wall0 if len(received) >= args.events else None
    cpu_note = _cpu_note(own_cpu, consumer.cpu_s, publish_s, "producer process")
    return Run(
        f"baseline, aiokafka {label}",
        args.events,
        publish_s,
        consume_s,
        len(received),
        cpu_note=cpu_note,
    )


async def run(infra: Infra, args: argparse.Namespace) -> list[Run]:
    runs: list[Run] = []
    plan: list[tuple[str, Any]] = [
        ("baseline: aiokafka direct, all in flight", lambda: baseline_phase(infra, args, None)),
        (
            f"baseline: aiokafka direct, batches of {args.batch_size[0]} like the relay",
            lambda: baseline_phase(infra, args, args.batch_size[0]),
        ),
    ]
    for size in args.batch_size:
        plan.append(
            (f"relay, outbox_batch_size={size}", lambda s=size: relay_phase(infra, args, s))
        )
    for title, phase in plan:
        print(f"\n--- {title}: {args.events:,} events", flush=True)
        result: Run = await phase()
        print(f"  done: {_fmt(result)}", flush=True)
        runs.append(result)
    return runs


def _fmt(r: Run) -> str:
    pub = f"{r.publish_rate:8,.0f}/s ({r.publish_s:.2f}s)" if r.publish_s else "incomplete"
    con = f"{r.consume_rate:8,.0f}/s ({r.consume_s:.2f}s)" if r.consume_s else "incomplete"
    return f"published {pub}   consumed end-to-end {con}   received {r.received:,}"


def report(infra: Infra, args: argparse.Namespace, runs: list[Run]) -> bool:
    base = runs[0]
    relays = [r for r in runs if r.name.startswith("relay")]
    rows: list[tuple[str, str]] = [*machine_facts(infra)]
    rows.append(("workload", f"{args.events:,} events backlog, ~{_avg_size()} bytes each"))
    for r in runs:
        rows.append(("", ""))
        rows.append((r.name, _fmt(r)))
        if r.cpu_note:
            rows.append(("  cpu", r.cpu_note))
        if r in relays:
            steady = r.events / (r.publish_s - r.connect_s) if r.publish_s else 0.0
            rows.append(
                ("  startup", f"connected after {r.connect_s:.2f}s; {steady:,.0f}/s after that")
            )
            rows.append(
                (
                    "  vs baseline",
                    f"x{r.publish_rate / base.publish_rate:.2f} of direct aiokafka "
                    f"({base.publish_rate:,.0f}/s); end-to-end "
                    f"x{(r.consume_rate / base.consume_rate) if base.consume_rate else 0:.2f}",
                )
            )
            verdict = "PASS" if r.publish_rate >= TARGET_EVENTS_PER_S else "FAIL"
            rows.append(("  target", f">= {TARGET_EVENTS_PER_S:,.0f}/s: {verdict}"))
    ok = all(r.received >= r.events for r in runs)
    if relays:
        best = max(relays, key=lambda r: r.publish_rate)
        worst = min(relays, key=lambda r: r.publish_rate)
        spread = 1 - worst.publish_rate / best.publish_rate if best.publish_rate else 0.0
        rows.append(("", ""))
        note = f"{best.name} at {best.publish_rate:,.0f}/s"
        if len(relays) > 1:
            note += f" (spread {spread:.0%} between sizes"
            note += "; within run-to-run noise, ~10%)" if spread < 0.10 else ")"
        rows.append(("best batch size", note))
        ok = ok and best.publish_rate >= TARGET_EVENTS_PER_S
    print_block("outbox relay throughput: results", rows)
    return ok


def _avg_size() -> int:
    row = outbox_row(new_event(12345))
    headers = sum(len(k) + len(v) for k, v in row["headers"].items())
    return len(row["key"]) + len(row["payload"]) + headers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="backlog size")
    parser.add_argument(
        "--batch-size",
        default="500,2000,5000",
        help="NodeSettings.outbox_batch_size, or several comma-separated: one relay run each "
        "(kit default 500)",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="give up a relay run after")
    parser.add_argument("--database-url", help="PostgreSQL server URL (default: embedded)")
    parser.add_argument("--bootstrap-servers", help="Kafka bootstrap servers (default: embedded)")
    args = parser.parse_args()
    args.batch_size = [int(s) for s in args.batch_size.split(",") if s.strip()]
    quiet_logs()
    with infrastructure(args.database_url, args.bootstrap_servers) as infra:
        runs = asyncio.run(run(infra, args))
        ok = report(infra, args, runs)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
