"""Sustained routing through data-exchange: one domain topic to three departments, mixed modes.

A publisher process writes ``business.registered`` events to ``registration.events`` at a
steady rate. Data-exchange (this process, served on a real port, consumers and dispatcher
running) routes each one to three grants: tax by its Kafka topic, social security by a signed
webhook to a real HTTP receiver, statistics by long-poll pull. A sink process receives all
three and stamps each event id on arrival. Reported: the routing rate (events delivered to all
three per second while publishing, and from the first publish to the last delivery), and
publish -> delivered latency per mode (p50/p95/p99).

    .venv/bin/python bench/exchange_routing.py                  # ~1 min at defaults
    .venv/bin/python bench/exchange_routing.py --rate 500 --seconds 20
    .venv/bin/python bench/exchange_routing.py --replicas 2       # two data-exchange processes
    .venv/bin/python bench/exchange_routing.py --pseudonyms       # a new person per event

``--replicas N`` runs N data-exchange processes on the same database and broker (this one and
N - 1 children), whose routing consumers share ``registration.events`` (created here with a
partition count N divides); the pull sink long-polls the first only, so the others' pull
deliveries reach it by PostgreSQL notification. CPU is reported per replica.

``--pseudonyms`` serves a real identity (``bench/_exchange_identity.py``) where data-exchange
and the departments are enrolled, and makes every event name a new person; without it the
legal representative's resident ID is withheld.

Every process runs on uvloop, as uvicorn runs the services (``--loop auto``, uvloop installed).

Targets (issue 6): >= 2,000 events/s sustained, p95 publish -> delivered <= 500 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from multiprocessing.connection import Connection
from typing import Any

import httpx
import orjson
import uvloop
from _common import (
    MP,
    Infra,
    cpu_rows,
    cpu_seconds,
    infrastructure,
    machine_facts,
    percentile,
    print_block,
    quiet_logs,
)
from _exchange_identity import Disclosures, Identity, legal_representative, pseudonym_rows
from _exchange_replicas import (
    Replicas,
    create_routing_topic,
    department_token,
    exchange_database,
    exchange_settings,
    grant_departments,
    replicas_cpu_rows,
)

from tongban_exchange.catalogue.asyncapi import delivery_topic
from tongban_exchange.main import create_app
from tongban_kit.auth.testing import LocalIssuer
from tongban_kit.events import CloudEvent
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import serving_app

DATASET = "gov.tongban.registration.business.registered.v1"
WARM_UP = 20  # events routed before measuring, so every consumer group has settled
MODES = ("kafka", "webhook", "pull")


def business_registered(n: int, people: bool) -> CloudEvent:
    uscc = "91440305000000019K"
    return CloudEvent.new(
        DATASET,
        source="/nodes/440300/registration",
        subject=f"{uscc}-{n % 64}",
        data={
            "business_id": str(uuid.uuid4()),
            "uscc": uscc,
            "name": f"深圳市样本{n}科技有限公司",
            "division_code": "440305",
            "registered_at": "2026-11-26T10:00:00+00:00",
            "legal_representative": legal_representative(n, people=people),
        },
    )


# -- publisher process ------------------------------------------------------------------------


def _publisher_main(
    node_fields: dict[str, Any], rate: int, seconds: float, people: bool, conn: Connection
) -> None:
    quiet_logs()
    uvloop.run(_publish(NodeSettings(**node_fields), rate, seconds, people, conn))


async def _publish(
    node: NodeSettings, rate: int, seconds: float, people: bool, conn: Connection
) -> None:
    from tongban_kit.kafka import build_producer, ensure_topics

    topic = node.topic("registration.events")
    await ensure_topics(node, [topic])
    producer = build_producer(node, client_id="bench-publisher")
    await producer.start()
    # Warm-up: every consumer on the way has joined its group once these arrive everywhere.
    warm = [business_registered(-n, people) for n in range(1, WARM_UP + 1)]
    for event in warm:
        record = event.to_kafka()
        await producer.send_and_wait(
            topic, key=record.key, value=record.value, headers=record.headers
        )
    conn.send([event.id for event in warm])
    await asyncio.to_thread(conn.recv)  # "go", once the parent has read the CPU counters
    sent: dict[str, float] = {}
    try:
        total = int(rate * seconds)
        start = time.monotonic()
        tick = 0.01
        n = 0
        while n < total:
            due = min(total, int((time.monotonic() - start) * rate) + 1)
            batch = []
            while n < due:
                event = business_registered(n, people)
                record = event.to_kafka()
                batch.append(
                    await producer.send(
                        topic, key=record.key, value=record.value, headers=record.headers
                    )
                )
                sent[event.id] = event.time.timestamp()
                n += 1
            await asyncio.gather(*batch)
            await asyncio.sleep(tick)
        conn.send((sent, time.monotonic() - start))
        await asyncio.to_thread(conn.recv)  # "exit", once the parent has read them again
    finally:
        await producer.stop()


# -- sink process: the three departments ------------------------------------------------------


def _sink_main(
    node_fields: dict[str, Any], base_url: str, pull_token: str, port: int, conn: Connection
) -> None:
    quiet_logs()
    uvloop.run(_sink(NodeSettings(**node_fields), base_url, pull_token, port, conn))


async def _sink(
    node: NodeSettings, base_url: str, pull_token: str, port: int, conn: Connection
) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from tongban_kit.kafka import build_consumer, ensure_topics

    received: dict[str, dict[str, float]] = {mode: {} for mode in MODES}
    sample = Disclosures(received)

    async def hook(request: Request) -> Response:
        received["webhook"].setdefault(request.headers["webhook-id"], time.time())
        body = await request.body()
        sample.of("webhook", lambda: orjson.loads(body)["data"])
        return Response(status_code=204)

    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/hook", hook, methods=["POST"])]),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    serving = asyncio.create_task(server.serve())
    topic = node.topic(delivery_topic("tax"))
    await ensure_topics(node, [topic])
    consumer = build_consumer(node, topic, group_id=f"{node.kafka_namespace}.tax-department")
    await consumer.start()

    async def kafka() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=10_000)
            now = time.time()
            for records in batches.values():
                for record in records:
                    ce_id = dict(record.headers)["ce_id"].decode()
                    received["kafka"].setdefault(ce_id, now)
                    sample.of("kafka", lambda: orjson.loads(record.value))  # noqa: B023

    async def pull() -> None:
        after = 0
        headers = {"Authorization": f"Bearer {pull_token}"}
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            while True:
                page = (
                    await client.get(
                        "/v1/deliveries",
                        params={"after": after, "wait": 5, "limit": 500},
                        headers=headers,
                    )
                ).json()
                now = time.time()
                for event in page["events"]:
                    received["pull"].setdefault(event["id"], now)
                    sample.of("pull", lambda: event["data"])  # noqa: B023
                after = page["next"]

    while not server.started or not consumer.assignment():
        await consumer.getmany(timeout_ms=50)
    tasks = [asyncio.create_task(kafka()), asyncio.create_task(pull())]
    conn.send("ready")
    warm_ids = await asyncio.to_thread(conn.recv)
    give_up = time.monotonic() + 120
    while any(i not in r for r in received.values() for i in warm_ids):
        if time.monotonic() > give_up:
            raise SystemExit("the warm-up events did not arrive in two minutes")
        await asyncio.sleep(0.05)
    for mode in received.values():
        mode.clear()
    sample.counts.clear()
    conn.send("warm")
    _, expected, grace = await asyncio.to_thread(conn.recv)
    give_up = time.monotonic() + grace
    last = time.monotonic()
    while time.monotonic() < give_up and any(len(r) < expected for r in received.values()):
        await asyncio.sleep(0.2)
        if time.monotonic() - last > 2:
            last = time.monotonic()
            counts = ", ".join(f"{m} {len(r):,}" for m, r in received.items())
            print(f"  [departments] received {counts}", flush=True)
    conn.send((received, sample.counts))
    await asyncio.to_thread(conn.recv)  # "exit", once the parent has read the CPU counters
    for task in tasks:
        task.cancel()
    await consumer.stop()
    server.should_exit = True
    await serving


# -- the run --------------------------------------------------------------------------------


async def _receive(conn: Connection) -> Any:
    """The next message from a child process, without blocking the app's event loop."""
    await asyncio.to_thread(conn.poll, None)
    return conn.recv()


async def run(
    infra: Infra, rate: int, seconds: float, grace: float, replicas: int, people: bool
) -> int:
    from tongban_kit.infra import free_port

    database = await exchange_database(infra)
    with LocalIssuer() as issuer:
        node = infra.node(
            f"bench{uuid.uuid4().hex[:8]}",
            token_issuer=issuer.issuer,
            token_audience=issuer.audience,
            jwks_url=issuer.jwks_url,
            log_level="WARNING",
        )
        identity = await Identity.start(infra, node) if people else None
        node, enrolment = identity.enrol(node) if identity else (node, None)
        partitions = await create_routing_topic(node, replicas)
        hook_port = free_port()
        app = create_app(exchange_settings(node, database, enrolment))
        async with serving_app(app) as base_url:
            await grant_departments(base_url, issuer, DATASET, f"http://127.0.0.1:{hook_port}/hook")
            others = Replicas(node, database, replicas - 1, enrolment)
            await others.start()
            if replicas > 1:
                print(f"[run] {replicas} replicas share {partitions} partitions", flush=True)
            sink_parent, sink_child = MP.Pipe()
            sink = MP.Process(
                target=_sink_main,
                args=(
                    node.model_dump(),
                    base_url,
                    department_token(issuer, "statistics"),
                    hook_port,
                    sink_child,
                ),
                daemon=True,
            )
            sink.start()
            assert await _receive(sink_parent) == "ready"
            print(f"[run] publishing {rate:,}/s for {seconds:.0f} s", flush=True)
            pub_parent, pub_child = MP.Pipe()
            publisher = MP.Process(
                target=_publisher_main,
                args=(node.model_dump(), rate, seconds, people, pub_child),
                daemon=True,
            )
            publisher.start()
            sink_parent.send(await _receive(pub_parent))  # the warm-up events' ids
            assert await _receive(sink_parent) == "warm"
            print("[run] warm-up events delivered in all three modes", flush=True)
            labels = {
                os.getpid(): "data-exchange" if replicas == 1 else "data-exchange 1",
                sink.pid or 0: "departments",
                publisher.pid or 0: "publisher",
                **others.labels(),
                **(identity.labels() if identity else {}),
            }
            batches = [await identity.batches()] if identity else []
            cpu_before = cpu_seconds(labels)
            pub_parent.send("go")
            sent, publish_s = await _receive(pub_parent)
            sink_parent.send(("expect", len(sent), grace))
            received, samples = await _receive(sink_parent)
            cpu_after = cpu_seconds(labels)
            batches += [await identity.batches()] if identity else []
            pub_parent.send("exit")
            sink_parent.send("exit")
            sink.join(10)
            publisher.join(10)
            others.stop()
        if identity is not None:
            await identity.stop()

    first = min(sent.values())
    rows: list[tuple[str, str]] = [
        (
            "published",
            f"{len(sent):,} events in {publish_s:.1f} s ({len(sent) / publish_s:,.0f}/s offered)",
        )
    ]
    ok = True
    complete = [i for i in sent if all(i in received[m] for m in MODES)]
    if complete:
        done = sorted(max(received[m][i] for m in MODES) for i in complete)
        last = done[-1]
        # Steady state: events completed (arrived in all three modes) per second from the
        # first second of publishing to the last event published. Keeping up, it is the
        # offered rate; falling behind, less. The whole-run figure also counts the drain.
        start, end = first + 1.0, max(sent.values())
        steady = sum(1 for t in done if start <= t <= end) / (end - start)
        rows.append(
            (
                "routed to all three",
                f"{len(complete):,} events; {steady:,.0f} events/s while publishing, "
                f"{len(complete) / (last - first):,.0f}/s first publish -> last delivery",
            )
        )
        ok &= steady >= 2000 and len(complete) == len(sent)
    for mode in MODES:
        latencies = sorted(received[mode][i] - sent[i] for i in sent if i in received[mode])
        lost = len(sent) - len(latencies)
        p50, p95, p99 = (percentile(latencies, q) * 1000 for q in (50, 95, 99))
        rows.append(
            (
                f"{mode} latency",
                f"p50 {p50:,.0f} ms, p95 {p95:,.0f} ms, p99 {p99:,.0f} ms; missing {lost:,}",
            )
        )
        ok &= p95 <= 500 and lost == 0
    rows.append(("targets", "met" if ok else "NOT met (>= 2,000 events/s, p95 <= 500 ms)"))
    rows += cpu_rows(cpu_before, cpu_after, len(sent), "event")
    rows += replicas_cpu_rows(cpu_before, cpu_after, len(sent))
    rows += pseudonym_rows(batches, samples, len(sent))
    print_block("data-exchange routing: registration.events -> kafka + webhook + pull", rows)
    print_block("machine", machine_facts(infra))
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=2000, help="events/s offered")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--grace", type=float, default=60.0, help="wait for stragglers")
    parser.add_argument(
        "--replicas", type=int, default=1, help="data-exchange processes sharing the routing"
    )
    parser.add_argument(
        "--pseudonyms", action="store_true", help="a real identity; a new person per event"
    )
    parser.add_argument("--database-url")
    parser.add_argument("--bootstrap-servers")
    args = parser.parse_args()
    quiet_logs()
    with infrastructure(args.database_url, args.bootstrap_servers) as infra:
        return uvloop.run(
            run(infra, args.rate, args.seconds, args.grace, args.replicas, args.pseudonyms)
        )


if __name__ == "__main__":
    sys.exit(main())
