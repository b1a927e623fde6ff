"""Replay: an operator sends a dataset again to a department from a sequence or a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tongban_exchange.testing import BUSINESS_REGISTERED, Tokens, business_registered, grant
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import eventually, publish_events


async def _pulled(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    page = await client.get("/v1/deliveries", params={"wait": 1}, headers=headers)
    return [event["id"] for event in page.json()["events"]]


async def test_an_operator_replays_a_dataset_to_a_department(
    exchange: httpx.AsyncClient,
    as_department: Tokens,
    as_operator: dict[str, str],
    node_settings: NodeSettings,
) -> None:
    events = [business_registered() for _ in range(3)]
    await publish_events(node_settings, *events)
    await grant(exchange, as_department("witness"), fields=["uscc"])
    await publish_events(node_settings, marker := business_registered())
    await eventually(
        lambda: _pulled(exchange, as_department("witness")), lambda ids: marker.id in ids
    )
    await grant(exchange, as_department("statistics"), fields=["uscc"])  # came late

    by_seq = await exchange.post(
        "/v1/replays",
        json={"dataset": BUSINESS_REGISTERED, "department": "statistics", "from_seq": 2},
        headers=as_operator,
    )
    by_time = await exchange.post(
        "/v1/replays",
        json={
            "dataset": BUSINESS_REGISTERED,
            "department": "statistics",
            "from_time": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        },
        headers=as_operator,
    )
    by_department = await exchange.post(
        "/v1/replays",
        json={"dataset": BUSINESS_REGISTERED, "department": "statistics", "from_seq": 1},
        headers=as_department("statistics"),
    )
    no_grant = await exchange.post(
        "/v1/replays",
        json={"dataset": BUSINESS_REGISTERED, "department": "customs", "from_seq": 1},
        headers=as_operator,
    )

    assert by_seq.status_code == 202, by_seq.text
    assert (by_seq.json()["events"], by_seq.json()["last_seq"]) == (3, 4)
    assert by_time.json()["events"] == 4
    assert (by_department.status_code, no_grant.status_code) == (403, 409)
    ids = await _pulled(exchange, as_department("statistics"))
    expected = [e.id for e in events[1:]] + [marker.id] + [e.id for e in [*events, marker]]
    assert ids == expected
