"""The three departments of the node bench and what they receive: tax reads its Kafka topic,
social security gets webhooks on a real HTTP server, statistics pulls; ``enrol`` makes them
(and market regulation, the officer) as an operator would, with their grants."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from tongban_kit.infra import free_port
from tongban_kit.settings import NodeSettings
from tongban_kit.testing.callers import Department, Identity, department
from tongban_kit.testing.node import NodeProcess

DATASET = "gov.tongban.registration.business.registered.v1"


@dataclass
class Arrivals:
    """When each department first received each business (by USCC), monotonic seconds."""

    seen: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def arrived(self, mode: str, uscc: str) -> None:
        with self.lock:
            self.seen[mode].setdefault(uscc, time.monotonic())


class WebhookReceiver:
    """Social security's endpoint: a real HTTP server answering 204 and noting arrivals."""

    def __init__(self, arrivals: Arrivals) -> None:
        self.port = free_port()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                arrivals.arrived("webhook", json.loads(body)["data"]["uscc"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/tongban"


async def read_kafka(node: NodeProcess, arrivals: Arrivals, stop: asyncio.Event) -> None:
    """Tax reads its topic on the node's broker."""
    settings = NodeSettings(
        kafka_bootstrap_servers=f"127.0.0.1:{node.env['TONGBAN_EMBEDDED_KAFKA_PORT']}"
    )
    consumer = AIOKafkaConsumer(
        settings.topic("exchange.to.tax"),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
        metadata_max_age_ms=2_000,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    arrivals.arrived("kafka", json.loads(record.value)["uscc"])
    finally:
        await consumer.stop()


async def pull(
    api: httpx.AsyncClient,
    headers: Callable[[], dict[str, str]],
    arrivals: Arrivals,
    stop: asyncio.Event,
) -> None:
    """Statistics long-polls its deliveries."""
    cursor = 0
    while not stop.is_set():
        with contextlib.suppress(httpx.HTTPError):
            answer = await api.get(
                "/exchange/v1/deliveries",
                params={"after": cursor, "wait": 2, "limit": 100},
                headers=headers(),
                timeout=10,
            )
            if answer.status_code == 200:
                page = answer.json()
                for event in page["events"]:
                    arrivals.arrived("pull", event["data"]["uscc"])
                cursor = page["next"]
                continue
        await asyncio.sleep(0.5)


@dataclass
class Parties:
    """Market regulation (the officer) and the three subscribing departments' tokens."""

    samr: Department
    tokens: dict[str, dict[str, str]]
    receiver: WebhookReceiver


def enrol(node: NodeProcess, arrivals: Arrivals) -> Parties:
    receiver = WebhookReceiver(arrivals)
    api = httpx.Client(base_url=f"{node.gateway}/api", timeout=30)
    print("[setup] enrolling market regulation (officer) and three departments", flush=True)
    # Tokens through the gateway, as a department's would come.
    identity = Identity.of(node, through_gateway=True)
    samr = department(identity, "samr", "identity:assurance registration:review")
    subscribers = {
        "tax": {"mode": "kafka"},
        "social-security": {"mode": "webhook", "url": receiver.url},
        "statistics": {"mode": "pull"},
    }
    tokens: dict[str, dict[str, str]] = {}
    for code, delivery in subscribers.items():
        headers = department(identity, code, "exchange:subscribe").headers
        tokens[code] = headers
        granted = api.post(
            "/exchange/v1/grants",
            headers=headers,
            json={
                "dataset": DATASET,
                "purpose": "open a record of every new business",
                "legal_basis": "多证合一 (State Council 2017 No. 41)",
                "fields": ["uscc", "name"],
                "personal": False,
                "delivery": delivery,
            },
        )
        if granted.status_code != 201:
            raise RuntimeError(f"grant for {code}: {granted.status_code} {granted.text}")
    api.close()
    return Parties(samr, tokens, receiver)
