"""The whole journey through a whole node, at increasing rates.

A node is started as ``make run`` starts it (``tongban node up``: embedded PostgreSQL and
broker, every service in its own uvicorn process, state in a temporary directory). Each journey
is what a citizen, an officer and three departments do, all through the gateway:

    sign-up → assurance raised by the officer → login → application (draft) → submit
    → claim → approval → business.registered delivered to tax (its Kafka topic), social
    security (a webhook to a small real HTTP server in this process) and statistics (pull)

Journeys are started open-loop at each rate of ``--rates`` for ``--seconds``; a step's
journeys are then given ``--grace`` seconds to finish and be delivered. For every step the
script prints the offered and achieved journeys/s, p50/p95/p99 of every step of the journey,
the delivery lag per department (approval answered → event received), errors, and the CPU
seconds the node's processes spent per journey; at the end the highest rate sustained (≥ 90% of
offered achieved, nothing lost), the machine and the configuration.

    .venv/bin/python bench/node/run.py                          # rates 0.5,1,2,4; 20 s each
    .venv/bin/python bench/node/run.py --rates 1,2 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from departments import Arrivals, enrol, pull, read_kafka  # bench/node/, on sys.path as run

from tongban_kit.identifiers import InvalidIdentifier, validate_resident_id
from tongban_kit.testing.node import NodeProcess, node_process
from tongban_registration.testing import application

STEPS = ("sign-up", "assurance", "login", "draft", "submit", "claim", "approve")
MODES = ("kafka", "webhook", "pull")
DIGITS = "零一二三四五六七八九"
PASSWORD = "correct horse battery staple"  # noqa: S105 - every bench citizen's


def routes_without_credential_limit(state: Path) -> Path:
    """The gateway's built-in routes with the ``credentials`` rate limit (1/s per client
    address, against guessing passwords) lifted: every bench citizen signs up and logs in from
    127.0.0.1. Everything else stays as shipped."""
    routes = yaml.safe_load((resources.files("tongban_gateway") / "routes.yaml").read_text())
    routes["rate_limits"]["credentials"] = {"rate_per_s": 1000, "burst": 1000}
    path = state / "bench-routes.yaml"
    path.write_text(yaml.safe_dump(routes, allow_unicode=True))
    return path


def resident_id(n: int) -> str:
    """A valid, unique resident ID number (the check character found by the kit's validator)."""
    body = f"440305{1970 + n // 100_000 % 40}{(n // 1000) % 12 + 1:02d}{n % 28 + 1:02d}"
    body += f"{n % 1000:03d}"
    for check in "0123456789X":
        with contextlib.suppress(InvalidIdentifier):
            return validate_resident_id(body + check)
    raise AssertionError(body)


def company_name(n: int) -> str:
    return "深圳市" + "".join(DIGITS[int(d)] for d in str(n)) + "号基准测试科技有限公司"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def ms(values: list[float]) -> str:
    if not values:
        return "      n/a"
    return "/".join(f"{percentile(values, q) * 1000:.0f}" for q in (50, 95, 99))


# -- the journey --------------------------------------------------------------------------------


@dataclass
class Step:
    """One rate: what the journeys of that step measured."""

    rate: float
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    approved: dict[str, float] = field(default_factory=dict)  # USCC -> approval answered
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    started: int = 0
    finished: list[float] = field(default_factory=list)  # monotonic end of each journey


class Journeys:
    def __init__(self, api: httpx.AsyncClient, officer: Callable[[], dict[str, str]]) -> None:
        self.api = api
        self.officer = officer
        self.counter = 0

    async def timed(
        self, step: Step, name: str, call: Awaitable[httpx.Response], ok: int = 200
    ) -> Any:
        began = time.monotonic()
        response = await call
        step.times[name].append(time.monotonic() - began)
        if response.status_code != ok:
            step.errors[f"{name} {response.status_code}"] += 1
            raise RuntimeError(f"{name}: {response.status_code} {response.text[:200]}")
        return response.json()

    async def run(self, step: Step) -> None:
        self.counter += 1
        n = self.counter + int(time.time()) % 100_000 * 1000
        api, officer = self.api, self.officer()
        rid = resident_id(n)
        try:
            person = await self.timed(
                step,
                "sign-up",
                api.post(
                    "/identity/v1/persons",
                    json={
                        "resident_id": rid,
                        "name": "张三",
                        "phone": "13800138000",
                        "password": PASSWORD,
                    },
                ),
                ok=201,
            )
            await self.timed(
                step,
                "assurance",
                api.post(
                    f"/identity/v1/persons/{person['id']}/assurance/substantial",
                    json={"source": "household-register"},
                    headers=officer,
                ),
            )
            login = await self.timed(
                step,
                "login",
                api.post("/identity/v1/login", json={"resident_id": rid, "password": PASSWORD}),
            )
            citizen = {"Authorization": f"Bearer {login['access_token']}"}
            body = application(
                name=company_name(n),
                legal_representative={"name": "张三", "resident_id": rid},
            )
            draft = await self.timed(
                step,
                "draft",
                api.post("/registration/v1/applications", json=body, headers=citizen),
                ok=201,
            )
            app_id = draft["id"]
            await self.timed(
                step,
                "submit",
                api.post(f"/registration/v1/applications/{app_id}/submit", headers=citizen),
            )
            review = f"/registration/v1/review/applications/{app_id}"
            await self.timed(step, "claim", api.post(f"{review}/claim", headers=officer))
            decided = await self.timed(
                step,
                "approve",
                api.post(
                    f"{review}/decision",
                    json={"decision": "approve"},
                    headers={"Idempotency-Key": f"approve-{app_id}", **officer},
                ),
            )
            step.approved[decided["uscc"]] = time.monotonic()
            step.finished.append(time.monotonic())
        except httpx.HTTPError as exc:
            step.errors[type(exc).__name__] += 1
        except RuntimeError:
            pass


# -- measuring the node -------------------------------------------------------------------------


def node_cpu_seconds(node: NodeProcess) -> float:
    """CPU seconds (user + system) of the launcher and every process under it so far."""
    total = 0.0
    try:
        root = psutil.Process(node.process.pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
    except psutil.Error:
        pass
    return total


async def run_step(
    journeys: Journeys,
    arrivals: Arrivals,
    node: NodeProcess,
    rate: float,
    seconds: float,
    grace: float,
    max_inflight: int,
) -> tuple[Step, float, float, float]:
    """Start journeys at ``rate`` for ``seconds``; wait for them and their deliveries."""
    step = Step(rate)
    cpu_before, began = node_cpu_seconds(node), time.monotonic()
    tasks: set[asyncio.Task[None]] = set()
    total = max(1, round(rate * seconds))
    last_progress = began
    for i in range(total):
        due = began + i / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        if len(tasks) >= max_inflight:
            step.errors["skipped (too many in flight)"] += 1
            continue
        task = asyncio.create_task(journeys.run(step))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        step.started += 1
        if time.monotonic() - last_progress >= 5:
            last_progress = time.monotonic()
            progress(step, arrivals, began)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        delivered = all(u in arrivals.seen[m] for u in step.approved for m in MODES)
        if not tasks and delivered:
            break
        await asyncio.sleep(0.5)
        if time.monotonic() - last_progress >= 5:
            last_progress = time.monotonic()
            progress(step, arrivals, began)
    for task in list(tasks):
        task.cancel()
    elapsed = (max(step.finished) if step.finished else time.monotonic()) - began
    return step, elapsed, node_cpu_seconds(node) - cpu_before, time.monotonic() - began


def progress(step: Step, arrivals: Arrivals, began: float) -> None:
    delivered = {m: sum(u in arrivals.seen[m] for u in step.approved) for m in MODES}
    print(
        f"  … {time.monotonic() - began:5.1f}s  started {step.started}  approved "
        f"{len(step.approved)}  delivered {delivered}  errors {sum(step.errors.values())}",
        flush=True,
    )


def report(step: Step, arrivals: Arrivals, elapsed: float, cpu: float) -> bool:
    achieved = len(step.finished) / elapsed if elapsed > 0 else 0.0
    lost = {m: sum(u not in arrivals.seen[m] for u in step.approved) for m in MODES}
    print(
        f"\n== {step.rate:g} journeys/s offered: {len(step.finished)}/{step.started} journeys "
        f"completed, {achieved:.2f}/s achieved; load average {os.getloadavg()[0]:.2f}"
    )
    print("   step         p50/p95/p99 ms")
    for name in STEPS:
        print(f"   {name:<12} {ms(step.times[name])}")
    for mode in MODES:
        lags = [
            arrivals.seen[mode][u] - t for u, t in step.approved.items() if u in arrivals.seen[mode]
        ]
        print(f"   lag {mode:<8} {ms(lags)}   (approval answered → received; lost {lost[mode]})")
    per = cpu / len(step.finished) if step.finished else math.nan
    print(f"   node CPU {cpu:.1f}s = {per * 1000:.0f} ms per journey (all node processes)")
    if step.errors:
        print(f"   errors {dict(step.errors)}")
    return bool(step.finished) and achieved >= 0.9 * step.rate and not any(lost.values())


def machine(args: argparse.Namespace, node: NodeProcess) -> None:
    import importlib.metadata as md

    print("\n== machine and configuration")
    print(
        f"   {os.cpu_count()} cores ({platform.machine()}), "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(
        f"   Python {platform.python_version()}, "
        + ", ".join(
            f"{d} {md.version(d)}"
            for d in ("fastapi", "uvicorn", "sqlalchemy", "asyncpg", "aiokafka")
        )
    )
    print(
        "   node: tongban node up (embedded PostgreSQL, embedded tansu broker with memory "
        "storage, one uvicorn worker per service: identity, registration, data-exchange, "
        "gateway), state in a temporary directory"
    )
    print(
        "   gateway: built-in routes; the `credentials` rate limit (sign-up, login, tokens: 1/s "
        "per address) lifted to 1000/s, as every bench citizen comes from 127.0.0.1"
    )
    print(
        f"   load: {args.seconds:g} s per rate, rates {args.rates}, grace {args.grace:g} s, "
        f"at most {args.max_inflight} journeys in flight; the client runs on the same machine"
    )


async def drive(args: argparse.Namespace, node: NodeProcess) -> int:
    arrivals = Arrivals()
    parties = await asyncio.to_thread(enrol, node, arrivals)
    samr, tokens = parties.samr, parties.tokens
    officer = samr.headers
    limits = httpx.Limits(max_connections=args.max_inflight + 8)
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=f"{node.gateway}/api", timeout=60, limits=limits) as api:
        workers = [
            asyncio.create_task(read_kafka(node, arrivals, stop)),
            asyncio.create_task(pull(api, lambda: tokens["statistics"], arrivals, stop)),
        ]
        journeys = Journeys(api, lambda: officer)
        sustained = 0.0
        try:
            for rate in [float(r) for r in args.rates.split(",")]:
                # Access tokens are short-lived: each rate starts with fresh ones.
                officer = await asyncio.to_thread(samr.fresh_headers)
                print(f"\n[rate {rate:g}/s] {args.seconds:g} s of journeys", flush=True)
                step, elapsed, cpu, _ = await run_step(
                    journeys, arrivals, node, rate, args.seconds, args.grace, args.max_inflight
                )
                if report(step, arrivals, elapsed, cpu):
                    sustained = rate
                else:
                    print("   not sustained: stopping here")
                    break
        finally:
            stop.set()
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
    parties.receiver.server.shutdown()
    machine(args, node)
    print(
        f"\n== sustained: {sustained:g} journeys/s (the highest rate with ≥ 90% achieved and "
        "every event delivered to all three departments)"
    )
    return 0 if sustained else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="0.5,1,2,4", help="journeys/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of load per rate")
    parser.add_argument("--grace", type=float, default=60.0, help="seconds to finish after")
    parser.add_argument("--max-inflight", type=int, default=64)
    args = parser.parse_args()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tongban-bench-node-") as state:
        print(f"[node] starting tongban node up in {state}", flush=True)
        env = {"TONGBAN_GATEWAY_ROUTES_FILE": str(routes_without_credential_limit(Path(state)))}
        with node_process(Path(state), ready_timeout=180, env=env) as node:
            print(f"[node] up after {time.monotonic() - began:.1f}s at {node.gateway}", flush=True)
            code = asyncio.run(drive(args, node))
    print(f"[done] in {time.monotonic() - began:.0f}s")
    return code


if __name__ == "__main__":
    sys.exit(main())
