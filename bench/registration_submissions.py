"""Registration over real HTTP: submission latency at a fixed rate, and approval to
`business.registered` on Kafka.

The registration app runs as the node runs it: uvicorn, one worker, in its own process, with
its outbox relay and consumers, on a fresh migrated database and the broker. Tokens come from a
LocalIssuer whose JWKS the app fetches like identity's. The load generator is this process
(httpx, open loop: the schedule does not wait for slow answers).

Phases, in one invocation:

0. **Baseline**: `GET /healthz` at the submission rate: what uvicorn, the kit's middleware and
   the client cost with no work behind them.
1. **Submissions**: drafts are created first (not timed), then each is submitted
   (`POST /v1/applications/{id}/submit`, person at `substantial`) at `--rate` per second for
   `--seconds`: p50/p95/p99/max and the ratio to the baseline. Target: p99 <= 50 ms at 100/s.
2. **Approval to Kafka**: applications already claimed by an officer are approved
   (`POST /v1/review/applications/{id}/decision`) at `--approval-rate`; a consumer in its own
   process stamps each `business.registered` on receipt. Latency: from sending the approval to
   the event on Kafka (and, for reference, from the approval's answer). Target: p99 <= 200 ms.

    .venv/bin/python bench/registration_submissions.py
    .venv/bin/python bench/registration_submissions.py --rate 100 --seconds 10 --approvals 200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

import httpx
from _common import (
    MP,
    Infra,
    drop_database,
    infrastructure,
    machine_facts,
    percentile,
    print_block,
    quiet_logs,
)
from sqlalchemy.engine import make_url

from tongban_kit.auth.testing import LocalIssuer
from tongban_kit.infra import free_port
from tongban_kit.settings import NodeSettings
from tongban_registration.testing import application

REGISTERED = "gov.tongban.registration.business.registered.v1"


# -- the app under test -----------------------------------------------------------------------


def _registration_database(infra: Infra) -> str:
    """A database of registration's own next to the bench one (the kit tables come from the
    service's migrations, which would clash with the bench database's)."""
    from tongban_kit.db.migrations import ensure_database, upgrade

    url = make_url(infra.database_url)
    own = url.set(database=f"{url.database}_reg").render_as_string(hide_password=False)
    asyncio.run(ensure_database(own))
    upgrade("tongban_registration:migrations", own)
    return own


@contextlib.contextmanager
def serving_registration(node: NodeSettings, database_url: str) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TONGBAN_")}
    env |= {
        "TONGBAN_KAFKA_BOOTSTRAP_SERVERS": node.kafka_bootstrap_servers,
        "TONGBAN_KAFKA_NAMESPACE": node.kafka_namespace,
        "TONGBAN_TOKEN_ISSUER": node.token_issuer,
        "TONGBAN_TOKEN_AUDIENCE": node.token_audience,
        "TONGBAN_JWKS_URL": node.jwks_url,
        "TONGBAN_LOG_LEVEL": "WARNING",
        "TONGBAN_REGISTRATION_DATABASE_URL": database_url,
        "TONGBAN_REGISTRATION_PORT": str(port),
    }
    command = [
        *(sys.executable, "-m", "uvicorn", "tongban_registration.main:create_app", "--factory"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--no-access-log", "--log-level", "warning"),
    ]
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("registration exited during start-up")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            time.sleep(0.3)
        else:
            raise TimeoutError("registration was not ready in 60 s")
        print(f"[app] registration ready at {base} (uvicorn, one worker)", flush=True)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


# -- the consumer, in its own process ---------------------------------------------------------


class RegisteredConsumer:
    """Stamps `time.time()` on receipt of each business.registered, by subject (the USCC)."""

    def __init__(self, node: NodeSettings) -> None:
        self._parent, child = MP.Pipe()
        self._proc = MP.Process(target=_consumer_main, args=(node.model_dump(), child), daemon=True)

    def start(self) -> None:
        self._proc.start()
        if not self._parent.poll(60) or self._parent.recv() != "ready":
            self._proc.kill()
            raise RuntimeError("consumer did not start")

    def finish(self, expected: int) -> dict[str, float]:
        self._parent.send(expected)
        if not self._parent.poll(60):
            self._proc.kill()
            raise TimeoutError("consumer did not report")
        received: dict[str, float] = self._parent.recv()
        self._proc.join(10)
        return received


def _consumer_main(node_fields: dict[str, Any], conn: Connection) -> None:
    quiet_logs()
    asyncio.run(_consume(NodeSettings(**node_fields), conn))


async def _consume(node: NodeSettings, conn: Connection) -> None:
    from tongban_kit.kafka import build_consumer, ensure_topics

    topic = node.topic("registration.events")
    await ensure_topics(node, [topic])
    consumer = build_consumer(node, topic, group_id=f"{node.kafka_namespace}.bench-registered")
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=50)
        conn.send("ready")
        received: dict[str, float] = {}
        expected: int | None = None
        give_up = 0.0
        while expected is None or (len(received) < expected and time.monotonic() < give_up):
            batches = await consumer.getmany(timeout_ms=100, max_records=10_000)
            now = time.time()
            for records in batches.values():
                for record in records:
                    headers = dict(record.headers)
                    if headers.get("ce_type", b"").decode() == REGISTERED:
                        received.setdefault(headers["ce_subject"].decode(), now)
            if expected is None and conn.poll():
                expected = conn.recv()
                give_up = time.monotonic() + 20
        conn.send(received)
    finally:
        await consumer.stop()


# -- load -------------------------------------------------------------------------------------


async def open_loop(
    count: int, rate: float, call: Callable[[int], Awaitable[tuple[int, float]]]
) -> tuple[list[float], dict[int, int], float]:
    """Start call(i) at t0 + i/rate, whatever earlier calls are doing; latencies in ms,
    statuses, and the rate actually achieved."""
    t0 = time.perf_counter() + 0.05
    results: list[tuple[int, float]] = []

    async def one(i: int) -> None:
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        results.append(await call(i))

    await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - t0
    statuses: dict[int, int] = {}
    for status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    return sorted(ms for _, ms in results), statuses, count / elapsed


def summary(latencies: list[float]) -> str:
    p = {q: percentile(latencies, q) for q in (50, 95, 99)}
    return (
        f"p50 {p[50]:.1f} ms, p95 {p[95]:.1f} ms, p99 {p[99]:.1f} ms, "
        f"max {latencies[-1]:.1f} ms (n={len(latencies)})"
    )


def within(metrics: str, route: str) -> str:
    """Share of the route's requests the service itself answered within 25 / 50 / 100 ms (its
    latency histogram: no client or queueing time in it)."""
    counts: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith("tongban_http_request_duration_seconds_bucket") and route in line:
            le = line.split('le="')[1].split('"')[0]
            counts[le] = float(line.rsplit(" ", 1)[1])
    total = counts.get("+Inf", 0.0)
    if not total:
        return "no histogram"
    shares = ", ".join(
        f"<= {float(le) * 1000:.0f} ms {counts[le] / total:.1%}" for le in ("0.025", "0.05", "0.1")
    )
    return f"{shares} (n={total:.0f})"


async def prepare(
    client: httpx.AsyncClient, person: dict[str, str], count: int, tag: str
) -> list[str]:
    """Drafts, created ten at a time (not timed)."""
    ids: list[str] = []
    semaphore = asyncio.Semaphore(10)

    async def one(i: int) -> None:
        async with semaphore:
            body = application(name=f"深圳市基准{tag}{i:05d}科技有限公司")
            response = await client.post("/v1/applications", json=body, headers=person)
            response.raise_for_status()
            ids.append(response.json()["id"])

    await asyncio.gather(*(one(i) for i in range(count)))
    return ids


async def run(args: argparse.Namespace, base: str, issuer: LocalIssuer, node: NodeSettings) -> bool:
    person = {"Authorization": f"Bearer {issuer.mint(sub=str(uuid.uuid4()), acr='substantial')}"}
    officer = {
        "Authorization": "Bearer "
        + issuer.mint(sub="officer-bench", acr="substantial", scope="registration:review")
    }
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        count = int(args.rate * args.seconds)
        # Warm the connection pool and the app (first requests pay imports and JWKS).
        await asyncio.gather(*(client.get("/healthz") for _ in range(50)))

        async def healthz(i: int) -> tuple[int, float]:
            started = time.perf_counter()
            response = await client.get("/healthz")
            return response.status_code, (time.perf_counter() - started) * 1000

        print(f"[0] baseline: GET /healthz at {args.rate}/s for {args.seconds} s", flush=True)
        base_lat, base_status, base_rate = await open_loop(count, args.rate, healthz)

        print(f"[1] preparing {count} drafts", flush=True)
        drafts = await prepare(client, person, count, "s")

        async def submit(i: int) -> tuple[int, float]:
            started = time.perf_counter()
            response = await client.post(f"/v1/applications/{drafts[i]}/submit", headers=person)
            return response.status_code, (time.perf_counter() - started) * 1000

        print(f"[1] submitting at {args.rate}/s for {args.seconds} s", flush=True)
        sub_lat, sub_status, sub_rate = await open_loop(count, args.rate, submit)

        server_side = within(
            (await client.get("/metrics")).text, "/v1/applications/{application_id}/submit"
        )

        print(f"[2] preparing {args.approvals} claimed applications", flush=True)
        claimed = await prepare(client, person, args.approvals, "a")
        for application_id in claimed:
            (
                await client.post(f"/v1/applications/{application_id}/submit", headers=person)
            ).raise_for_status()
            (
                await client.post(
                    f"/v1/review/applications/{application_id}/claim", headers=officer
                )
            ).raise_for_status()
        consumer = RegisteredConsumer(node)
        consumer.start()
        sent: dict[str, tuple[float, float]] = {}

        async def approve(i: int) -> tuple[int, float]:
            started_wall, started = time.time(), time.perf_counter()
            response = await client.post(
                f"/v1/review/applications/{claimed[i]}/decision",
                json={"decision": "approve"},
                headers=officer,
            )
            if response.status_code == 200:
                sent[response.json()["uscc"]] = (started_wall, time.time())
            return response.status_code, (time.perf_counter() - started) * 1000

        print(f"[2] approving {args.approvals} at {args.approval_rate}/s", flush=True)
        app_lat, app_status, _ = await open_loop(args.approvals, args.approval_rate, approve)
        received = consumer.finish(len(sent))

    from_send = sorted((received[u] - s) * 1000 for u, (s, _) in sent.items() if u in received)
    from_answer = sorted((received[u] - a) * 1000 for u, (_, a) in sent.items() if u in received)
    lost = len(sent) - len(from_send)

    sub_ok = sub_status == {200: count} and sub_rate >= 0.95 * args.rate
    p99_sub = percentile(sub_lat, 99)
    p99_kafka = percentile(from_send, 99) if from_send else float("inf")
    rows = [
        (
            "baseline GET /healthz",
            f"{summary(base_lat)}; statuses {base_status}; {base_rate:.0f}/s",
        ),
        ("submissions", f"{summary(sub_lat)}; statuses {sub_status}; {sub_rate:.0f}/s achieved"),
        (
            "submissions / baseline",
            f"p50 x{percentile(sub_lat, 50) / percentile(base_lat, 50):.1f}, "
            f"p99 x{p99_sub / percentile(base_lat, 99):.1f}",
        ),
        (
            "target submissions",
            f"p99 {p99_sub:.1f} ms <= 50 ms at {args.rate}/s: "
            + ("MET" if sub_ok and p99_sub <= 50 else "NOT MET" if sub_ok else "NOT MEASURED"),
        ),
        ("submissions, server side", server_side),
        ("approval requests", f"{summary(app_lat)}; statuses {app_status}"),
        ("approval sent -> Kafka", summary(from_send) if from_send else "nothing received"),
        ("approval answered -> Kafka", summary(from_answer) if from_answer else "-"),
        ("events lost", str(lost)),
        (
            "target approval -> Kafka",
            f"p99 {p99_kafka:.1f} ms <= 200 ms: "
            + ("MET" if p99_kafka <= 200 and lost == 0 else "NOT MET"),
        ),
    ]
    print_block("registration: submissions and approval -> business.registered", rows)
    return sub_ok and p99_sub <= 50 and p99_kafka <= 200 and lost == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="submissions per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--approvals", type=int, default=200)
    parser.add_argument("--approval-rate", type=float, default=20.0)
    parser.add_argument("--database-url")
    parser.add_argument("--bootstrap-servers")
    args = parser.parse_args()
    quiet_logs()
    with (
        infrastructure(args.database_url, args.bootstrap_servers) as infra,
        LocalIssuer() as issuer,
    ):
        database_url = _registration_database(infra)
        node = infra.node(
            f"b{uuid.uuid4().hex[:10]}",
            token_issuer=issuer.issuer,
            token_audience=issuer.audience,
            jwks_url=issuer.jwks_url,
        )
        try:
            with serving_registration(node, database_url) as base:
                ok = asyncio.run(run(args, base, issuer, node))
            print_block("machine", machine_facts(infra))
        finally:
            with contextlib.suppress(Exception):
                asyncio.run(drop_database(database_url))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
