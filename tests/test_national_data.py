"""National data across three nodes in one process: the central node's identity keeps the
real directory (two regional nodes enrol with one-time tokens); a tax department at the
central node receives the business-registered events of both regional nodes by webhook, and a
statistics department at 310000 those of both nodes by pull (440300's through central's
feed), each exactly once, although Kafka redelivers them at their nodes. Shenzhen reaches
central through central's gateway, found in the directory; Shanghai is pointed at central's
data-exchange. With that gateway stopped (the link down), Shenzhen's national events queue and
reach central's tax department once each after it is started again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tongban_exchange.main import create_app as create_exchange
from tongban_exchange.settings import ExchangeSettings
from tongban_exchange.testing import (
    ServedNode,
    Tokens,
    WebhookReceiver,
    business_registered,
    grant,
)
from tongban_gateway.main import create_app as create_gateway
from tongban_gateway.settings import GatewaySettings
from tongban_identity.main import create_app as create_identity
from tongban_identity.settings import IdentitySettings
from tongban_kit.auth.node_keys import CENTRAL_NODE, development_node_key, public_jwk
from tongban_kit.auth.testing import LocalIssuer
from tongban_kit.identifiers import generate_uscc
from tongban_kit.infra import free_port
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import eventually, publish_events, running_app, serving_app
from tongban_kit.testing.plugin import BrokerHandle, node_settings_for

REGIONS = ("440300", "310000")


def node_of(base: NodeSettings, code: str) -> NodeSettings:
    return base.model_copy(
        update={"node_code": code, "kafka_namespace": f"{base.kafka_namespace}-{code}"}
    )


def issue_token(database_url: str, code: str) -> str:
    """The central operator's `tongban directory issue-token --code <code>`."""
    done = subprocess.run(
        [sys.executable, "-m", "tongban_identity.nodes", "issue-token", "--code", code],
        env={**os.environ, "TONGBAN_IDENTITY_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def as_department(token_issuer: LocalIssuer) -> Tokens:
    def headers(code: str, scope: str = "exchange:subscribe") -> dict[str, str]:
        client_id = f"dept-{code}-0a1b2c3d4e5f"
        token = token_issuer.mint(
            drop=("acr", "amr", "auth_time"),
            sub=client_id,
            client_id=client_id,
            department=code,
            department_name=code,
            scope=scope,
        )
        return {"Authorization": f"Bearer {token}"}

    return headers


@dataclass
class Central:
    identity_url: str
    gateway_port: int  # central's gateway, as the directory names it (started by the test)

    @property
    def directory_url(self) -> str:
        return f"{self.identity_url}/.well-known/tongban-directory.jwt"


@pytest.fixture(scope="module")
async def central_identity(
    make_database: Any, tongban_broker: BrokerHandle, token_issuer: LocalIssuer
) -> AsyncIterator[Central]:
    """Central's identity, serving the signed directory both regional nodes enrolled in; one
    for the module (the enrolments are commands of seconds each), which the tests only read."""
    database = await make_database("tongban_identity:migrations")
    gateway_port = free_port()
    settings = IdentitySettings(
        database_url=database,
        node=node_of(node_settings_for(tongban_broker, token_issuer), CENTRAL_NODE),
        run_workers=False,
        node_name="中央",
        gateway_url=f"http://127.0.0.1:{gateway_port}",
    )
    async with serving_app(create_identity(settings)) as url:
        async with httpx.AsyncClient(base_url=url) as identity:
            for code in REGIONS:
                token = await asyncio.to_thread(issue_token, database, code)
                enrolled = await identity.post(
                    "/v1/nodes/enrolments",
                    json={
                        "token": token,
                        "code": code,
                        "name": code,
                        "gateway_url": f"http://127.0.0.1:9/{code}",
                        "token_issuer": f"http://127.0.0.1:9/{code}/api/identity",
                        "jwks": {"keys": [public_jwk(development_node_key(code))]},
                    },
                )
                assert enrolled.status_code == 201, enrolled.text
        yield Central(url, gateway_port)


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hook = WebhookReceiver()
    await hook.start()
    try:
        yield hook
    finally:
        await hook.stop()


@dataclass
class Nodes:
    """Central (data-exchange, and its gateway, which can be stopped and started) and both
    regional data-exchanges, with a tax department at central receiving by webhook."""

    central: httpx.AsyncClient
    gateway: ServedNode
    regional: dict[str, tuple[NodeSettings, httpx.AsyncClient]]
    tax_secret: str
    operator: dict[str, str]


@pytest.fixture
async def nodes(
    make_database: Any,
    node_settings: NodeSettings,
    central_identity: Central,
    token_issuer: LocalIssuer,
    as_department: Tokens,
    receiver: WebhookReceiver,
) -> AsyncIterator[Nodes]:
    central_settings = ExchangeSettings(
        database_url=await make_database("tongban_exchange:migrations"),
        node=node_of(node_settings, CENTRAL_NODE),
        national_directory_url=central_identity.directory_url,
        webhook_backoff_initial_s=0.2,
    )
    async with contextlib.AsyncExitStack() as stack:
        central_url = await stack.enter_async_context(
            serving_app(create_exchange(central_settings))
        )
        central = await stack.enter_async_context(httpx.AsyncClient(base_url=central_url))
        gateway = ServedNode(
            lambda: create_gateway(
                GatewaySettings(
                    node=node_of(node_settings, CENTRAL_NODE),
                    identity_url=central_identity.identity_url,
                    registration_url="http://127.0.0.1:9",
                    exchange_url=central_url,
                    directory_url=central_identity.directory_url,
                )
            ),
            port=central_identity.gateway_port,
        )
        await gateway.start()
        stack.push_async_callback(gateway.stop)
        tax = await grant(
            central,
            as_department("tax"),
            fields=["uscc", "name", "division_code"],
            mode="webhook",
            url=receiver.url,
        )
        regional: dict[str, tuple[NodeSettings, httpx.AsyncClient]] = {}
        for code in REGIONS:
            settings = ExchangeSettings(
                database_url=await make_database("tongban_exchange:migrations"),
                node=node_of(node_settings, code),
                national_directory_url=central_identity.directory_url,
                # Shenzhen finds central's gateway in the directory; Shanghai is told where
                # central's data-exchange is.
                national_central_url=None if code == "440300" else central_url,
                # A link back up is tried again within a second.
                national_backoff_initial_s=0.2,
                national_backoff_max_s=1.0,
            )
            client = await stack.enter_async_context(running_app(create_exchange(settings)))
            regional[code] = (settings.node, client)
        yield Nodes(
            central=central,
            gateway=gateway,
            regional=regional,
            tax_secret=tax["webhook_secret"],
            operator={"Authorization": f"Bearer {token_issuer.mint(scope='tongban:admin')}"},
        )


async def test_departments_at_central_and_at_a_region_receive_both_regions_events_once(
    nodes: Nodes, as_department: Tokens, receiver: WebhookReceiver
) -> None:
    sent = {
        code: business_registered(
            node=code,
            uscc=generate_uscc(division_code=code[:4] + "05", serial=index + 1),
            division_code=code[:4] + "05",
        )
        for index, code in enumerate(REGIONS)
    }
    # Shanghai's statistics bureau pulls business registrations: its own node's and,
    # through central's feed, the other nodes' national ones.
    shanghai = nodes.regional["310000"][1]
    statistics = as_department("statistics")
    await grant(shanghai, statistics, fields=["uscc"])
    for code in REGIONS:
        # The regional registration's event; Kafka delivers it twice.
        await publish_events(nodes.regional[code][0], sent[code], times=2)

    await eventually(lambda: _count(receiver), lambda n: n >= 2, timeout=30)
    seen_in_shanghai = await eventually(
        lambda: _pulled(shanghai, statistics), lambda seen: len(seen) >= 2, timeout=30
    )
    # Shenzhen reads the feed through central's gateway too (Shanghai's event is in it).
    shenzhen = nodes.regional["440300"][1]

    await eventually(
        lambda: _forwards(shenzhen, nodes.operator),
        lambda view: int(view["feed_cursor"] or 0) > 0,
        timeout=30,
    )
    await asyncio.sleep(3)  # room for a wrong second delivery
    seen_in_shanghai = await _pulled(shanghai, statistics)

    assert sorted(seen_in_shanghai) == sorted(e.id for e in sent.values())
    bodies = [json.loads(body) for _, body in receiver.received]
    for headers, body in receiver.received:
        Webhook(nodes.tax_secret).verify(body, headers)
    assert sorted(b["id"] for b in bodies) == sorted(e.id for e in sent.values())
    assert {b["source"] for b in bodies} == {f"/nodes/{code}/registration" for code in REGIONS}
    by_id = {b["id"]: b for b in bodies}
    for code, event in sent.items():
        assert by_id[event.id]["data"] == {
            "uscc": event.data["uscc"],
            "name": event.data["name"],
            "division_code": code[:4] + "05",
        }


async def test_with_the_link_to_central_down_events_queue_and_arrive_once_after(
    nodes: Nodes, receiver: WebhookReceiver
) -> None:
    shenzhen_node, shenzhen = nodes.regional["440300"]

    def queue() -> Awaitable[dict[str, Any]]:
        return _forwards(shenzhen, nodes.operator)

    # Shenzhen reaches central only through central's gateway, as the directory names it.
    assert (await queue())["central_url"] == f"{nodes.gateway.url}/api/exchange"
    await nodes.gateway.stop()  # the link to central is down

    sent = [
        business_registered(
            node="440300",
            uscc=generate_uscc(division_code="440305", serial=index + 1),
            division_code="440305",
        )
        for index in range(4)
    ]
    await publish_events(shenzhen_node, *sent, times=2)  # Kafka delivers each twice

    waiting = await eventually(
        queue,
        lambda q: (
            q["counts"] == {"pending": len(sent)} and max(f["attempts"] for f in q["forwards"]) >= 2
        ),
        timeout=30,
    )
    assert sorted(f["event_id"] for f in waiting["forwards"]) == sorted(e.id for e in sent)
    assert waiting["oldest_pending_at"] is not None
    assert any("Error" in (f["last_error"] or "") for f in waiting["forwards"])
    metrics = (await shenzhen.get("/metrics")).text
    assert f"tongban_exchange_national_pending {float(len(sent))}" in metrics
    assert receiver.received == []  # nothing reached the tax department at central

    await nodes.gateway.start()  # the link is back, on the same address
    await eventually(lambda: _count(receiver), lambda n: n >= len(sent), timeout=30)
    done = await eventually(queue, lambda q: q["counts"] == {"forwarded": len(sent)}, timeout=30)
    assert done["oldest_pending_at"] is None
    await asyncio.sleep(3)  # room for a wrong second delivery

    # Nothing lost, nothing doubled.
    ids = [json.loads(body)["id"] for _, body in receiver.received]
    assert sorted(ids) == sorted(e.id for e in sent)
    for headers, body in receiver.received:
        Webhook(nodes.tax_secret).verify(body, headers)
    assert len({headers["webhook-id"] for headers, _ in receiver.received}) == len(sent)
    assert (await queue())["counts"] == {"forwarded": len(sent)}
    metrics = (await shenzhen.get("/metrics")).text
    assert "tongban_exchange_national_pending 0.0" in metrics


async def _pulled(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    response = await client.get("/v1/deliveries", params={"after": 0}, headers=headers)
    assert response.status_code == 200, response.text
    return [event["id"] for event in response.json()["events"]]


async def _forwards(client: httpx.AsyncClient, operator: dict[str, str]) -> dict[str, Any]:
    """The operator view of a regional node's queue of national events to central."""
    response = await client.get("/v1/national/forwards", headers=operator)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _count(receiver: WebhookReceiver) -> int:
    return len(receiver.received)
