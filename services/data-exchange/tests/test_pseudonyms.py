"""Pseudonyms from a real identity: data-exchange asks `POST /v1/pairwise/subjects` as its
service account (`identity:pairwise:derive`); each department sees its own pseudonym of the
legal representative, never the resident ID number."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiokafka import ConsumerRecord
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from jwt.algorithms import ECAlgorithm
from starlette.types import ASGIApp, Receive, Scope, Send

from tongban_exchange.main import create_app
from tongban_exchange.routing.consumer import RoutingConsumer
from tongban_exchange.routing.pseudonyms import (
    PAIRWISE_BATCH_PATH,
    PAIRWISE_PATH,
    IdentityUnavailable,
)
from tongban_exchange.settings import ExchangeSettings
from tongban_exchange.testing import RESIDENT_ID, Tokens, business_registered, grant
from tongban_identity.main import create_app as create_identity
from tongban_identity.sessions.testing import fast_hasher, resident_id
from tongban_identity.settings import IdentitySettings
from tongban_kit.auth.client import generate_service_key
from tongban_kit.auth.testing import LocalIssuer
from tongban_kit.events import CloudEvent
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import publish_events, running_app, serving_app
from tongban_kit.testing.plugin import BrokerHandle, node_settings_for


def _identity_command(database: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tongban_identity.departments", *args],
        env={**os.environ, "TONGBAN_IDENTITY_DATABASE_URL": database},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


class CountingRequests:
    """ASGI middleware on the real identity app: the path of every HTTP request it serves."""

    def __init__(self, app: ASGIApp, paths: list[str], outage: list[int]) -> None:
        self.app = app
        self.paths = paths
        self.outage = outage  # statuses to answer pairwise requests with, instead of identity

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
            if self.outage and "/pairwise/" in scope["path"]:
                await send({"type": "http.response.start", "status": self.outage[0]})
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)


@dataclass
class Identity:
    """A real identity, served, where two departments (tax, social-security) and data-exchange's
    service account are enrolled; it records the path of every request in ``paths``."""

    url: str
    database: str
    jwks_file: Path
    client_id: str
    key_file: Path
    paths: list[str]
    outage: list[int]


@dataclass
class Linked:
    client: httpx.AsyncClient
    app: FastAPI
    identity_paths: list[str]
    identity_db: str
    jwks_file: Path
    outage: list[int]


@pytest.fixture(scope="module")
async def identity(  # type: ignore[no-untyped-def]
    make_database,
    tongban_broker: BrokerHandle,
    token_issuer: LocalIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Identity]:
    """One identity for the module's tests: its migrations and three enrolment commands take
    seconds. Identity keeps no pseudonym of people it does not know, so the tests share it; a
    test that enrols a department there names one of its own."""
    identity_db: str = await make_database("tongban_identity:migrations")
    keys = tmp_path_factory.mktemp("pseudonym-keys")
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1", "use": "sig"}
    jwks_file = keys / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [jwk]}))
    for code in ("tax", "social-security"):
        _identity_command(
            identity_db,
            *("create", "--code", code, "--name", code, "--scopes", "exchange:subscribe"),
            *("--jwks-file", str(jwks_file)),
        )
    key_file = keys / "exchange.pem"
    generate_service_key(key_file)
    client_id = _identity_command(
        identity_db,
        *("service-account", "--service", "exchange"),
        *("--scopes", "identity:pairwise:derive", "--key-file", str(key_file)),
    )
    node = node_settings_for(tongban_broker, token_issuer)
    app = create_identity(IdentitySettings(database_url=identity_db, node=node, run_workers=False))
    app.state.password_hasher = fast_hasher()
    paths: list[str] = []
    outage: list[int] = []
    app.add_middleware(CountingRequests, paths=paths, outage=outage)
    async with serving_app(app) as url:
        yield Identity(url, identity_db, jwks_file, client_id, key_file, paths, outage)


@pytest.fixture
async def exchange_with_identity(linked: Linked) -> httpx.AsyncClient:
    return linked.client


@pytest.fixture
async def linked(
    identity: Identity, node_settings: NodeSettings, database: str
) -> AsyncIterator[Linked]:
    """A fresh data-exchange enrolled at the module's identity, which has answered nothing yet
    and has no outage."""
    identity.paths.clear()
    identity.outage.clear()
    settings = ExchangeSettings(
        database_url=database,
        # Identity makes pseudonyms; department tokens still come from the test issuer.
        node=node_settings.model_copy(update={"identity_url": identity.url}),
        client_id=identity.client_id,
        client_key_file=identity.key_file,
    )
    app = create_app(settings)
    try:
        async with running_app(app) as client:
            yield Linked(
                client, app, identity.paths, identity.database, identity.jwks_file, identity.outage
            )
    finally:
        identity.outage.clear()  # a failed test leaves no outage to the next


async def test_each_department_gets_its_own_pseudonym_from_identity(
    exchange_with_identity: httpx.AsyncClient, as_department: Tokens, node_settings: NodeSettings
) -> None:
    client = exchange_with_identity
    fields = ["uscc", "legal_representative", "investors"]
    for department in ("tax", "social-security"):
        await grant(client, as_department(department), fields=fields)
    event = business_registered(
        investors=[{"name": "李四", "kind": "natural_person", "share": "100"}]
    )

    await publish_events(node_settings, event)

    seen = {}
    for department in ("tax", "social-security"):
        page = await client.get(
            "/v1/deliveries", params={"wait": 15}, headers=as_department(department)
        )
        (delivered,) = page.json()["events"]
        seen[department] = delivered["data"]
    tax, social = seen["tax"], seen["social-security"]
    assert tax["legal_representative"]["name"] == "张三"
    assert (
        tax["legal_representative"]["resident_id"] != social["legal_representative"]["resident_id"]
    )
    assert RESIDENT_ID not in json.dumps(seen)
    # An investor's name is no resident ID: identity makes no pseudonym of it, so it is withheld.
    assert tax["investors"] == [{"kind": "natural_person", "share": "100"}]


async def route_batch(linked: Linked, events: list[CloudEvent]) -> None:
    """Route ``events`` as one batch, as the routing consumer does with what it fetches."""
    records = []
    for offset, event in enumerate(events):
        record = event.to_kafka()
        records.append(
            ConsumerRecord(
                topic=record.topic,
                partition=0,
                offset=offset,
                timestamp=0,
                timestamp_type=0,
                key=record.key,
                value=record.value,
                checksum=None,
                serialized_key_size=-1,
                serialized_value_size=-1,
                headers=record.headers,
            )
        )
    state = linked.app.state
    await RoutingConsumer(state.exchange, state.sessionmaker, state.metrics).handle(records)


def pairwise_requests(linked: Linked) -> list[str]:
    return [path for path in linked.identity_paths if "/pairwise/" in path]


async def test_a_batch_of_new_people_costs_identity_one_request(
    linked: Linked, as_department: Tokens
) -> None:
    client, exchange = linked.client, linked.app.state.exchange
    departments = ("tax", "social-security")
    for department in departments:
        await grant(client, as_department(department), fields=["uscc", "legal_representative"])
    numbers = [resident_id(100 + n) for n in range(40)]
    events = [
        business_registered(legal_representative={"name": f"法人{n}", "resident_id": number})
        for n, number in enumerate(numbers)
    ]
    linked.identity_paths.clear()

    await route_batch(linked, events)

    assert pairwise_requests(linked) == [PAIRWISE_BATCH_PATH]
    headers = await exchange.identity_headers()
    for department in departments:
        page = await client.get(
            "/v1/deliveries", params={"limit": 100}, headers=as_department(department)
        )
        delivered = {e["id"]: e["data"] for e in page.json()["events"]}
        assert set(delivered) == {event.id for event in events}
        for event, number in zip(events, numbers, strict=True):
            single = await exchange.http.post(
                exchange.identity_url() + PAIRWISE_PATH,
                json={"department": department, "resident_id": number},
                headers=headers,
            )
            assert single.status_code == 200, single.text
            seen = delivered[event.id]["legal_representative"]
            assert seen["resident_id"] == single.json()["pseudonym"], department
        assert not any(number in page.text for number in numbers)


async def test_a_department_enrolled_at_identity_later_soon_gets_pseudonyms(
    linked: Linked, as_department: Tokens
) -> None:
    client, exchange = linked.client, linked.app.state.exchange
    pseudonyms = exchange.extra["pseudonyms"]
    health = f"health-{uuid.uuid4().hex[:8]}"  # identity is shared: a code no test enrolled
    for department in ("tax", health):  # identity has never heard of health
        await grant(client, as_department(department), fields=["legal_representative"])
    numbers = [resident_id(200 + n) for n in range(3)]

    def batch() -> list[CloudEvent]:
        return [
            business_registered(legal_representative={"name": "法人", "resident_id": number})
            for number in numbers
        ]

    async def seen(department: str, after: int) -> tuple[list[dict[str, str]], int]:
        page = await client.get(
            "/v1/deliveries", params={"after": after}, headers=as_department(department)
        )
        body = page.json()
        return [e["data"]["legal_representative"] for e in body["events"]], body["next"]

    linked.identity_paths.clear()
    await route_batch(linked, batch())
    first, after = await seen(health, 0)
    assert pairwise_requests(linked) == [PAIRWISE_BATCH_PATH]
    assert first == [{"name": "法人"}] * 3  # withheld, never the number

    _identity_command(
        linked.identity_db,
        *("create", "--code", health, "--name", health, "--scopes", "exchange:subscribe"),
        *("--jwks-file", str(linked.jwks_file)),
    )
    linked.identity_paths.clear()
    await route_batch(linked, batch())  # withheld a little while yet: nobody asked
    second, after = await seen(health, after)
    assert pairwise_requests(linked) == []
    assert second == [{"name": "法人"}] * 3

    pseudonyms.withheld_seconds = 0.0  # as if that while had passed
    await route_batch(linked, batch())
    third, _ = await seen(health, after)
    assert pairwise_requests(linked) == [PAIRWISE_BATCH_PATH]
    headers = await exchange.identity_headers()
    for number, shown in zip(numbers, third, strict=True):
        single = await exchange.http.post(
            exchange.identity_url() + PAIRWISE_PATH,
            json={"department": health, "resident_id": number},
            headers=headers,
        )
        assert shown["resident_id"] == single.json()["pseudonym"]


@pytest.mark.parametrize("status", [503, 429, 401])
async def test_a_batch_waits_while_identity_cannot_answer(
    linked: Linked, as_department: Tokens, status: int
) -> None:
    client = linked.client
    await grant(client, as_department("tax"), fields=["legal_representative"])
    events = [
        business_registered(legal_representative={"name": "法人", "resident_id": resident_id(n)})
        for n in (300, 301)
    ]
    await linked.app.state.exchange.identity_headers()  # the service token, before the outage

    linked.outage.append(status)
    linked.identity_paths.clear()
    with pytest.raises(IdentityUnavailable):
        await route_batch(linked, events)
    asked = pairwise_requests(linked)
    nothing = await client.get("/v1/deliveries", headers=as_department("tax"))
    linked.outage.clear()
    await route_batch(linked, events)  # the retry
    page = await client.get("/v1/deliveries", headers=as_department("tax"))

    assert asked == [PAIRWISE_BATCH_PATH]  # no asking one by one instead
    assert nothing.json()["events"] == []
    shown = [e["data"]["legal_representative"] for e in page.json()["events"]]
    assert [len(s.get("resident_id", "")) for s in shown] == [32, 32]
