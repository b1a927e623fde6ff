"""National data between two nodes in one process: a regional node (440300) forwards its
national events to the central node (100000), whose departments receive them once; the link
can go down without losing or doubling anything; forged posts are refused and write nothing."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from tongban_exchange.main import create_app
from tongban_exchange.models import Dataset, DatasetEvent, LogEntry, NationalForward
from tongban_exchange.national import repository
from tongban_exchange.routing.service import envelope
from tongban_exchange.settings import ExchangeSettings
from tongban_exchange.testing import (
    USCC,
    DirectoryServer,
    ServedNode,
    Tokens,
    business_registered,
    grant,
)
from tongban_kit.auth.node_keys import CENTRAL_NODE, development_node_key
from tongban_kit.auth.node_trust import ASSERTION_HEADER, sign_assertion
from tongban_kit.events import CloudEvent
from tongban_kit.outbox import inbox
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import eventually, publish_events, running_app

REGION = "440300"


def node_of(base: NodeSettings, code: str) -> NodeSettings:
    return base.model_copy(
        update={"node_code": code, "kafka_namespace": f"{base.kafka_namespace}-{code}"}
    )


@dataclass
class Nodes:
    directory: DirectoryServer
    central: ServedNode
    central_db: str
    regional: httpx.AsyncClient
    regional_node: NodeSettings
    regional_db: str

    def to_central(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.central.url)


@pytest.fixture
async def directory() -> AsyncIterator[DirectoryServer]:
    server = DirectoryServer({CENTRAL_NODE: development_node_key(CENTRAL_NODE)})
    server.nodes[REGION] = development_node_key(REGION)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def nodes(
    make_database: Any, node_settings: NodeSettings, directory: DirectoryServer
) -> AsyncIterator[Nodes]:
    central_db = await make_database("tongban_exchange:migrations")
    regional_db = await make_database("tongban_exchange:migrations")
    central_settings = ExchangeSettings(
        database_url=central_db,
        node=node_of(node_settings, CENTRAL_NODE),
        national_directory_url=directory.url,
        national_refresh_s=0.3,
    )
    central = ServedNode(lambda: create_app(central_settings))
    regional_settings = ExchangeSettings(
        database_url=regional_db,
        node=node_of(node_settings, REGION),
        national_directory_url=directory.url,
        national_central_url=central.url,
        national_backoff_initial_s=0.2,
        national_backoff_max_s=1.0,
    )
    await central.start()
    try:
        async with running_app(create_app(regional_settings)) as regional:
            yield Nodes(
                directory, central, central_db, regional, regional_settings.node, regional_db
            )
    finally:
        await central.stop()


async def count(url: str, column: Any, *where: Any) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count(column)).where(*where)) or 0)
    finally:
        await engine.dispose()


async def pulled(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get("/v1/deliveries", params={"after": 0}, headers=headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def structured(event: CloudEvent) -> dict[str, Any]:
    return envelope(
        event_id=event.id,
        type=event.type,
        source=event.source,
        subject=event.subject,
        time=event.time,
        data=event.data,
    )


async def post_event(
    client: httpx.AsyncClient, event: dict[str, Any], assertion: str | None
) -> httpx.Response:
    headers = {"content-type": "application/cloudevents+json"}
    if assertion is not None:
        headers[ASSERTION_HEADER] = assertion
    return await client.post("/v1/national/events", content=json.dumps(event), headers=headers)


def regional_assertion(
    event: dict[str, Any],
    key: ec.EllipticCurvePrivateKey | None = None,
    code: str = REGION,
    audience: str = CENTRAL_NODE,
) -> str:
    """The assertion the regional forwarder sends with ``event``."""
    key = key or development_node_key(code)
    extra = {"tongban_event": event.get("id")}
    return sign_assertion(key, node_code=code, audience=audience, extra=extra)


async def test_a_regional_national_event_reaches_a_central_department_once(
    nodes: Nodes, as_department: Tokens
) -> None:
    tax = as_department("tax")
    async with nodes.to_central() as central:
        await grant(central, tax, fields=["uscc", "name"])
        event = business_registered()
        # Kafka redelivers it at the regional node, and the forward is repeated by hand
        # (as after an answer lost on the way back): central takes it once.
        await publish_events(nodes.regional_node, event, times=2)
        events = await eventually(lambda: pulled(central, tax), lambda seen: len(seen) >= 1)
        repeated = structured(event)
        again = await post_event(central, repeated, regional_assertion(repeated))
        assert again.status_code == 202, again.text
        assert again.json() == {"event_id": event.id, "status": "duplicate"}
        await eventually(
            lambda: count(
                nodes.regional_db, NationalForward.seq, NationalForward.status == "forwarded"
            ),
            lambda n: n == 1,
        )
        events = await pulled(central, tax)

    assert [e["id"] for e in events] == [event.id]
    assert events[0]["data"] == {"uscc": USCC, "name": event.data["name"]}
    assert events[0]["source"] == f"/nodes/{REGION}/registration"
    # Central's log: one arrival from the regional node and one delivery; the regional log
    # has the forward.
    assert await count(nodes.central_db, LogEntry.seq, LogEntry.kind == "arrival") == 1
    assert await count(nodes.central_db, LogEntry.seq, LogEntry.sender == f"node:{REGION}") == 1
    assert await count(nodes.central_db, LogEntry.seq, LogEntry.kind == "delivery") == 1
    assert await count(nodes.regional_db, LogEntry.seq, LogEntry.kind == "forward") == 1


async def test_events_queue_while_central_is_down_and_arrive_in_order_after(
    nodes: Nodes, as_department: Tokens, as_operator: dict[str, str]
) -> None:
    tax = as_department("tax")
    async with nodes.to_central() as central:
        await grant(central, tax, fields=["uscc", "name"])
    await nodes.central.stop()  # the link to central is down

    sent = [business_registered(name=f"深圳市第{i}号科技有限公司") for i in range(5)]
    await publish_events(nodes.regional_node, *sent)

    async def queue() -> dict[str, Any]:
        response = await nodes.regional.get("/v1/national/forwards", headers=as_operator)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    waiting = await eventually(
        queue,
        lambda q: q["counts"].get("pending") == 5 and q["forwards"][-1]["attempts"] >= 2,
    )
    assert waiting["oldest_pending_at"] is not None
    assert "Error" in (waiting["forwards"][-1]["last_error"] or "")
    metrics = (await nodes.regional.get("/metrics")).text
    assert "tongban_exchange_national_pending 5.0" in metrics

    await nodes.central.start()  # the link is back
    async with nodes.to_central() as central:
        events = await eventually(lambda: pulled(central, tax), lambda seen: len(seen) >= 5)
        done = await eventually(queue, lambda q: q["counts"] == {"forwarded": 5})
        assert done["oldest_pending_at"] is None
        events = await pulled(central, tax)
    # Nothing lost, nothing doubled, in the order they were accepted (one subject).
    assert [e["id"] for e in events] == [e.id for e in sent]
    assert await count(nodes.central_db, inbox.c.event_id) == 5

    # Forwards central took are forgotten after the retention; the rest stay.
    engine = create_async_engine(nodes.regional_db)
    try:
        async with engine.begin() as connection:
            session = AsyncSession(bind=connection)
            later = datetime.now(UTC) + timedelta(seconds=5)
            assert await repository.prune(session, before=later) == 5
    finally:
        await engine.dispose()
    assert (await queue())["counts"] == {}


async def test_a_node_central_does_not_know_yet_waits_and_is_taken_once_enrolled(
    nodes: Nodes, as_department: Tokens, as_operator: dict[str, str]
) -> None:
    tax = as_department("tax")
    async with nodes.to_central() as central:
        await grant(central, tax, fields=["uscc"])
        del nodes.directory.nodes[REGION]  # not (yet) in the directory central follows
        await asyncio.sleep(1.0)  # central refreshes every 0.3 s
        event = business_registered()
        await publish_events(nodes.regional_node, event)

        async def queue() -> dict[str, Any]:
            response = await nodes.regional.get(
                "/v1/national/forwards", params={"status": "pending"}, headers=as_operator
            )
            body: dict[str, Any] = response.json()
            return body

        waiting = await eventually(
            queue, lambda q: bool(q["forwards"]) and q["forwards"][0]["attempts"] >= 2
        )
        assert "401" in waiting["forwards"][0]["last_error"]
        assert await pulled(central, tax) == []

        nodes.directory.nodes[REGION] = development_node_key(REGION)  # enrolled
        events = await eventually(lambda: pulled(central, tax), lambda seen: len(seen) >= 1)
    assert [e["id"] for e in events] == [event.id]


async def test_an_event_central_refuses_for_good_is_set_aside_and_the_queue_moves_on(
    nodes: Nodes, as_department: Tokens, as_operator: dict[str, str]
) -> None:
    tax = as_department("tax")
    async with nodes.to_central() as central:
        await grant(central, tax, fields=["uscc"])
        revoked = "gov.tongban.registration.business.revoked.v1"
        engine = create_async_engine(nodes.central_db)
        try:  # central's catalogue disagrees: there, revocations are not national
            async with engine.begin() as connection:
                await connection.execute(
                    update(Dataset).where(Dataset.name == revoked).values(scope="node")
                )
        finally:
            await engine.dispose()
        refused = CloudEvent.new(
            revoked,
            source=f"/nodes/{REGION}/registration",
            subject=USCC,
            data={
                "business_id": str(uuid.uuid4()),
                "uscc": USCC,
                "reason": "虚假登记",
                "revoked_at": "2026-12-01T10:00:00+00:00",
                "revoked_by": "officer-1",
            },
        )
        taken = business_registered()
        await publish_events(nodes.regional_node, refused, taken)
        events = await eventually(lambda: pulled(central, tax), lambda seen: len(seen) >= 1)

    assert [e["id"] for e in events] == [taken.id]

    async def refused_rows() -> list[dict[str, Any]]:
        response = await nodes.regional.get(
            "/v1/national/forwards", params={"status": "refused"}, headers=as_operator
        )
        rows: list[dict[str, Any]] = response.json()["forwards"]
        return rows

    # The forwarder marks its whole batch in one transaction, which may commit after central
    # has already delivered the taken event.
    (row,) = await eventually(refused_rows)
    assert (row["event_id"], row["status"]) == (refused.id, "refused")
    assert "422" in row["last_error"]


async def test_a_regional_department_receives_other_nodes_national_events_from_central(
    nodes: Nodes, node_settings: NodeSettings, as_department: Tokens, as_operator: dict[str, str]
) -> None:
    tax = as_department("tax")
    await grant(nodes.regional, tax, fields=["uscc", "name"])
    own = business_registered()
    central_event = business_registered(
        node=CENTRAL_NODE, uscc="91100000MA00000000", division_code="110105"
    )
    await publish_events(nodes.regional_node, own, times=2)
    await publish_events(node_of(node_settings, CENTRAL_NODE), central_event)

    events = await eventually(
        lambda: pulled(nodes.regional, tax), lambda seen: len(seen) >= 2, timeout=20
    )
    await asyncio.sleep(2.5)  # own event forwarded and in central's feed by now: not back
    events = await pulled(nodes.regional, tax)

    assert sorted(e["id"] for e in events) == sorted([own.id, central_event.id])
    assert await count(nodes.regional_db, LogEntry.seq, LogEntry.sender == "node:100000") == 1
    response = await nodes.regional.get("/v1/national/forwards", headers=as_operator)
    assert response.json()["feed_cursor"] >= 2


async def test_the_feed_wants_a_node_assertion_made_for_it(nodes: Nodes) -> None:
    event = structured(business_registered())
    async with nodes.to_central() as central:
        anonymous = await central.get("/v1/national/feed")
        for_an_event = await central.get(
            "/v1/national/feed", headers={ASSERTION_HEADER: regional_assertion(event)}
        )
        feed = sign_assertion(
            development_node_key(REGION),
            node_code=REGION,
            audience=CENTRAL_NODE,
            extra={"tongban_national_feed": True},
        )
        allowed = await central.get("/v1/national/feed", headers={ASSERTION_HEADER: feed})

    assert (anonymous.status_code, for_an_event.status_code) == (401, 401)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json() == {"events": [], "next": 0}


async def test_forged_or_unknown_node_posts_are_refused_and_write_nothing(
    nodes: Nodes,
) -> None:
    event = structured(business_registered())
    stranger = ec.generate_private_key(ec.SECP256R1())
    async with nodes.to_central() as central:
        refused = [
            await post_event(central, event, None),
            await post_event(central, event, "not-a-jwt"),
            await post_event(central, event, regional_assertion(event, stranger)),  # wrong key
            await post_event(central, event, regional_assertion(event, code="450000")),  # unknown
            await post_event(central, event, regional_assertion(event, audience=REGION)),
            # signed for another event (or for none: the gateway's assertions of proxied
            # requests carry no event)
            await post_event(central, event, regional_assertion({"id": "another"})),
            await post_event(
                central,
                event,
                sign_assertion(development_node_key(REGION), node_code=REGION, audience="100000"),
            ),
        ]
        for response in refused:
            assert response.status_code == 401, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
        # The regional node may not forward events of another node as its own.
        other = {**event, "source": "/nodes/310000/registration"}
        assertion = regional_assertion(other)
        assert (await post_event(central, other, assertion)).status_code == 403
        # The same assertion again: a replay.
        replay = await post_event(central, other, assertion)
        assert replay.status_code == 401, replay.text
        assert "replay" in replay.json()["detail"]
        # A node-scoped dataset is not national.
        local = structured(
            CloudEvent.new(
                "gov.tongban.registration.application.submitted.v1",
                source=f"/nodes/{REGION}/registration",
                subject="x",
                data={},
            )
        )
        assert (await post_event(central, local, regional_assertion(local))).status_code == 422
        garbage = await post_event(central, {"specversion": "1.0"}, regional_assertion(event))
        assert garbage.status_code == 422, garbage.text

    for column in (inbox.c.event_id, LogEntry.seq, DatasetEvent.seq):
        assert await count(nodes.central_db, column) == 0


REDIS_URL = "redis://127.0.0.1:6379/0"


def central_replica(
    database_url: str, node: NodeSettings, directory: DirectoryServer, redis_url: str
) -> ExchangeSettings:
    """One replica of central's data-exchange (no workers: it only takes events in)."""
    return ExchangeSettings(
        database_url=database_url,
        node=node_of(node, CENTRAL_NODE),
        national_directory_url=directory.url,
        redis_url=redis_url,
        run_workers=False,
    )


async def test_central_replicas_sharing_redis_refuse_each_others_replays(
    make_database: Any, node_settings: NodeSettings, directory: DirectoryServer
) -> None:
    database = await make_database("tongban_exchange:migrations")
    settings = central_replica(database, node_settings, directory, REDIS_URL)
    event = structured(business_registered())
    assertion = regional_assertion(event)
    async with (
        running_app(create_app(settings)) as first,
        running_app(create_app(settings)) as second,
    ):
        taken = await post_event(first, event, assertion)
        replayed = await post_event(second, event, assertion)

    assert taken.status_code == 202, taken.text
    assert replayed.status_code == 401, replayed.text
    assert replayed.headers["content-type"].startswith("application/problem+json")
    assert "replay" in replayed.json()["detail"]
    assert await count(database, inbox.c.event_id) == 1


async def test_with_redis_down_central_answers_503_and_writes_nothing(
    make_database: Any, node_settings: NodeSettings, directory: DirectoryServer
) -> None:
    database = await make_database("tongban_exchange:migrations")
    with socket.socket() as unused:  # bound, not listening: connections are refused
        unused.bind(("127.0.0.1", 0))
        redis_down = f"redis://127.0.0.1:{unused.getsockname()[1]}/0"
        settings = central_replica(database, node_settings, directory, redis_down)
        event = structured(business_registered())
        async with running_app(create_app(settings)) as central:
            answer = await post_event(central, event, regional_assertion(event))

    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.headers["retry-after"] == "5"
    for column in (inbox.c.event_id, LogEntry.seq, DatasetEvent.seq):
        assert await count(database, column) == 0


async def test_a_node_without_national_exchange_answers_404(exchange: httpx.AsyncClient) -> None:
    event = structured(business_registered())
    response = await post_event(exchange, event, regional_assertion(event))
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_regional_node_takes_no_national_events(nodes: Nodes) -> None:
    event = structured(business_registered())
    response = await post_event(nodes.regional, event, regional_assertion(event))
    assert response.status_code == 404
