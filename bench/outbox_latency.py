"""Commit-to-consumer latency of the transactional outbox, against a direct-to-Kafka baseline.

Writer: at a fixed rate, each write is one transaction that inserts a tiny ``bench_items`` row
and calls ``add_event`` (what a service's request does); ``time.time()`` is taken right after
the commit returns and kept in a side map keyed by event id (a timestamp inside the event would
have to be taken before the commit). Relay: ``OutboxRelay.run()`` in this process
(``in-process``), or in a process of its own (``own-process``). Consumer: ``build_consumer`` with
a fresh group, in a process of its own, stamps ``time.time()`` on receipt per ``ce_id``.

Baseline, same run: the same rate of the same records sent straight to Kafka with an aiokafka
producer (``build_producer``, no database, no outbox); the "commit" time is the moment the
record is handed to the producer.

    python bench/outbox_latency.py                      # defaults: 200 writes/s for 20 s
    python bench/outbox_latency.py --rate 500 --seconds 10 --relay in-process
    python bench/outbox_latency.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from _common import (
    LOGICAL_TOPIC,
    MP,
    ConsumerProcess,
    Infra,
    bench_items,
    infrastructure,
    machine_facts,
    new_event,
    percentile,
    print_block,
    quiet_logs,
)
from sqlalchemy import insert

from tongban_kit.db import build_engine, build_sessionmaker
from tongban_kit.kafka import build_producer
from tongban_kit.observability.metrics import ServiceMetrics
from tongban_kit.outbox import OutboxRelay, add_event
from tongban_kit.settings import NodeSettings

TARGET_P99_MS = 100.0


@dataclass
class PhaseResult:
    name: str
    sent: int
    received: int
    lost: int
    measured: int  # after warm-up
    achieved_rate: float
    latencies_ms: list[float]  # sorted, warm-up excluded
    write_ms: list[float]  # sorted: how long each write (transaction / send call) took

    def pct(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


# -- writers --------------------------------------------------------------------------------

# One write: returns (event id, commit time) after the write is durable/handed over.
Write = Callable[[int], Awaitable[tuple[str, float]]]


async def drive(
    write: Write, *, rate: float, seconds: float, warmup: float, concurrency: int
) -> tuple[dict[str, float], set[str], list[float], float]:
    """Call ``write`` at ``rate``/s (open loop: the schedule does not wait for slow writes).

    Returns (commit times by event id, ids written during warm-up, write durations, elapsed).
    """
    total = round(rate * (warmup + seconds))
    n_warm = round(rate * warmup)
    committed: dict[str, float] = {}
    warm_ids: set[str] = set()
    durations: list[float] = []
    limit = asyncio.Semaphore(concurrency)
    errors: list[BaseException] = []

    async def one(i: int) -> None:
        async with limit:
            began = time.perf_counter()
            try:
                event_id, at = await write(i)
            except Exception as exc:
                errors.append(exc)
                return
            durations.append((time.perf_counter() - began) * 1000)
            committed[event_id] = at
            if i < n_warm:
                warm_ids.add(event_id)

    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    last_report = start
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if time.perf_counter() - last_report >= 2.0:
            last_report = time.perf_counter()
            elapsed = last_report - start
            print(f"  [writer] {len(committed):,} committed in {elapsed:.1f}s", flush=True)
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} writes failed, first: {errors[0]!r}")
    return committed, warm_ids, sorted(durations), elapsed


def outbox_write(engine: Any) -> Write:
    sessionmaker = build_sessionmaker(engine)

    async def write(i: int) -> tuple[str, float]:
        event = new_event(i)
        async with sessionmaker() as session, session.begin():
            await session.execute(insert(bench_items).values(name=event.subject))
            await add_event(session, event)
        return event.id, time.time()  # after the commit: the timestamp cannot be in the event

    return write


# -- relay in its own process ---------------------------------------------------------------


class RelayProcess:
    def __init__(self, database_url: str, node: NodeSettings) -> None:
        self._parent, child = MP.Pipe()
        self._proc = MP.Process(
            target=_relay_main,
            args=(database_url, node.model_dump(), child),
            name="bench-relay",
            daemon=True,
        )

    async def start(self) -> None:
        self._proc.start()
        if not await asyncio.to_thread(self._parent.poll, 30):
            self.kill()
            raise TimeoutError("relay process did not connect")
        msg = self._parent.recv()
        if msg != "ready":
            self.kill()
            raise RuntimeError(f"relay process failed: {msg}")

    async def stop(self) -> None:
        self._parent.send("stop")
        await asyncio.to_thread(self._proc.join, 15)
        self.kill()

    def kill(self) -> None:
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)


def _relay_main(database_url: str, node_fields: dict[str, Any], conn: Connection) -> None:
    quiet_logs()
    try:
        asyncio.run(_relay_until_stopped(database_url, NodeSettings(**node_fields), conn))
    except Exception as exc:
        conn.send(f"{type(exc).__name__}: {exc}")
        raise


async def _relay_until_stopped(database_url: str, node: NodeSettings, conn: Connection) -> None:
    engine = build_engine(database_url)
    relay = OutboxRelay(engine=engine, node=node, metrics=ServiceMetrics(), client_id="bench-relay")
    task = asyncio.create_task(relay.run())
    try:
        await _wait_connected(relay, task)
        conn.send("ready")
        await asyncio.to_thread(conn.recv)  # "stop"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await engine.dispose()


async def _wait_connected(relay: OutboxRelay, task: asyncio.Task[None]) -> None:
    deadline = time.monotonic() + 30
    while not relay.connected:
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise TimeoutError("relay did not connect to the broker")
        await asyncio.sleep(0.01)


# -- phases ---------------------------------------------------------------------------------


def _result(
    name: str,
    committed: dict[str, float],
    warm_ids: set[str],
    durations: list[float],
    elapsed: float,
    received: dict[str, float],
) -> PhaseResult:
    lost = [eid for eid in committed if eid not in received]
    latencies = sorted(
        (received[eid] - at) * 1000
        for eid, at in committed.items()
        if eid in received and eid not in warm_ids
    )
    return PhaseResult(
        name=name,
        sent=len(committed),
        received=sum(1 for eid in received if eid in committed),
        lost=len(lost),
        measured=len(latencies),
        achieved_rate=len(committed) / elapsed,
        latencies_ms=latencies,
        write_ms=durations,
    )


async def baseline_phase(infra: Infra, args: argparse.Namespace) -> PhaseResult:
    node = infra.node(f"bl{uuid.uuid4().hex[:10]}")
    topic = node.topic(LOGICAL_TOPIC)
    consumer = ConsumerProcess(node, "baseline")
    await asyncio.to_thread(consumer.start)
    producer = build_producer(node, client_id="bench-baseline")
    await producer.start()
    futures: list[asyncio.Future[Any]] = []

    async def write(i: int) -> tuple[str, float]:
        record = new_event(i).to_kafka()
        event_id = next(v.decode() for k, v in record.headers if k == "ce_id")
        at = time.time()
        futures.append(
            await producer.send(topic, value=record.value, key=record.key, headers=record.headers)
        )
        return event_id, at

    try:
        committed, warm, durations, elapsed = await drive(
            write,
            rate=args.rate,
            seconds=args.seconds,
            warmup=args.warmup,
            concurrency=args.concurrency,
        )
        await asyncio.gather(*futures)
        received = await asyncio.to_thread(consumer.finish, len(committed))
    finally:
        await producer.stop()
        consumer.kill()
    return _result("baseline: aiokafka direct", committed, warm, durations, elapsed, received)


async def outbox_phase(infra: Infra, args: argparse.Namespace, mode: str) -> PhaseResult:
    node = infra.node(f"ob{uuid.uuid4().hex[:10]}")
    consumer = ConsumerProcess(node, f"outbox-{mode}")
    await asyncio.to_thread(consumer.start)
    engine = build_engine(infra.database_url, pool_size=args.concurrency)
    relay_task: asyncio.Task[None] | None = None
    relay_proc: RelayProcess | None = None
    try:
        if mode == "in-process":
            relay = OutboxRelay(
                engine=engine, node=node, metrics=ServiceMetrics(), client_id="bench-relay"
            )
            relay_task = asyncio.create_task(relay.run())
            await _wait_connected(relay, relay_task)
        else:
            relay_proc = RelayProcess(infra.database_url, node)
            await relay_proc.start()
        committed, warm, durations, elapsed = await drive(
            outbox_write(engine),
            rate=args.rate,
            seconds=args.seconds,
            warmup=args.warmup,
            concurrency=args.concurrency,
        )
        received = await asyncio.to_thread(consumer.finish, len(committed))
    finally:
        if relay_task is not None:
            relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay_task
        if relay_proc is not None:
            await relay_proc.stop()
        consumer.kill()
        await engine.dispose()
    return _result(f"outbox, relay {mode}", committed, warm, durations, elapsed, received)


def _fmt(result: PhaseResult) -> str:
    return (
        f"p50 {result.pct(50):7.1f}  p90 {result.pct(90):7.1f}  p99 {result.pct(99):7.1f}  "
        f"max {result.pct(100):7.1f} ms"
    )


async def run(infra: Infra, args: argparse.Namespace) -> list[PhaseResult]:
    modes = ["in-process", "own-process"] if args.relay == "both" else [args.relay]
    results: list[PhaseResult] = []
    phases: list[tuple[str, Callable[[], Awaitable[PhaseResult]]]] = [
        ("baseline (aiokafka direct)", lambda: baseline_phase(infra, args))
    ]
    for mode in modes:
        phases.append((f"outbox, relay {mode}", lambda mode=mode: outbox_phase(infra, args, mode)))
    for title, phase in phases:
        print(
            f"\n--- {title}: {args.rate:g}/s for {args.seconds:g}s "
            f"(+{args.warmup:g}s warm-up, not measured)",
            flush=True,
        )
        result = await phase()
        print(
            f"  done: {result.received:,}/{result.sent:,} received, lost {result.lost}; "
            f"{_fmt(result)}",
            flush=True,
        )
        results.append(result)
    return results


def report(infra: Infra, args: argparse.Namespace, results: list[PhaseResult]) -> bool:
    base = results[0]
    rows: list[tuple[str, str]] = [*machine_facts(infra)]
    rows.append(
        (
            "workload",
            f"{args.rate:g} writes/s for {args.seconds:g}s (+{args.warmup:g}s warm-up), "
            f"writer concurrency {args.concurrency}, consumer fetch_max_wait "
            f"{NodeSettings().kafka_fetch_max_wait_ms} ms, relay batch "
            f"{NodeSettings().outbox_batch_size}",
        )
    )
    ok = True
    for r in results:
        rows.append(("", ""))
        rows.append((r.name, _fmt(r)))
        rows.append(
            (
                "  events",
                f"sent {r.sent:,}  received {r.received:,}  lost {r.lost}  "
                f"(measured {r.measured:,}); achieved {r.achieved_rate:.1f}/s",
            )
        )
        rows.append(
            (
                "  write call",
                f"p50 {percentile(r.write_ms, 50):.2f}  p99 {percentile(r.write_ms, 99):.2f} ms "
                + ("(transaction incl. commit)" if r is not base else "(producer.send)"),
            )
        )
        if r is not base:
            p50_ratio = r.pct(50) / base.pct(50)
            p99_ratio = r.pct(99) / base.pct(99)
            verdict = "PASS" if r.pct(99) <= TARGET_P99_MS and r.lost == 0 else "FAIL"
            if r.achieved_rate < 0.95 * args.rate:
                verdict = f"NOT MEASURED: the writer reached only {r.achieved_rate:.0f}/s"
            ok = ok and verdict == "PASS"
            rows.append(("  vs baseline", f"p50 x{p50_ratio:.2f}   p99 x{p99_ratio:.2f}"))
            rows.append(
                ("  target", f"p99 <= {TARGET_P99_MS:.0f} ms and 0 lost at this rate: {verdict}")
            )
        if r.lost:
            ok = False
    print_block("outbox commit-to-consumer latency: results", rows)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="writes per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument(
        "--relay",
        choices=["in-process", "own-process", "both"],
        default="both",
        help="where the relay runs (both: one phase each)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=10, help="writes in flight at most (pool size)"
    )
    parser.add_argument("--database-url", help="PostgreSQL server URL (default: embedded)")
    parser.add_argument("--bootstrap-servers", help="Kafka bootstrap servers (default: embedded)")
    args = parser.parse_args()
    quiet_logs()
    with infrastructure(args.database_url, args.bootstrap_servers) as infra:
        results = asyncio.run(run(infra, args))
        ok = report(infra, args, results)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
