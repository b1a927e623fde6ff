"""Publishing and queries: validated, idempotent by key and version, latest per key, only the
granted fields, 403 without a grant."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tongban_exchange.testing import TAX_STATUS, USCC, Tokens, grant, tax_status_dataset


@pytest.fixture
async def tax_status(exchange: httpx.AsyncClient, as_operator: dict[str, str]) -> str:
    return await tax_status_dataset(exchange, as_operator)


async def publish(
    client: httpx.AsyncClient, headers: dict[str, str], version: int, data: dict[str, Any]
) -> httpx.Response:
    return await client.put(
        f"/v1/datasets/{TAX_STATUS}/records/{USCC}",
        json={"version": version, "data": data},
        headers=headers,
    )


async def query(
    client: httpx.AsyncClient, headers: dict[str, str], purpose: str = "licence prerequisites"
) -> httpx.Response:
    return await client.get(
        f"/v1/datasets/{TAX_STATUS}/records/{USCC}", params={"purpose": purpose}, headers=headers
    )


async def test_the_owner_publishes_and_a_grantee_sees_only_its_fields(
    exchange: httpx.AsyncClient, as_department: Tokens, tax_status: str
) -> None:
    tax = as_department("tax")
    first = await publish(exchange, tax, 1, {"status": "arrears", "arrears_yuan": 300})
    retry = await publish(exchange, tax, 1, {"status": "arrears", "arrears_yuan": 300})
    second = await publish(exchange, tax, 2, {"status": "good", "officer": "王五"})
    await grant(exchange, as_department("market-regulation"), dataset=tax_status, fields=["status"])

    answer = await query(exchange, as_department("market-regulation"))

    assert (first.status_code, retry.status_code, second.status_code) == (201, 200, 200)
    assert retry.json()["event_id"] == first.json()["event_id"]
    assert answer.status_code == 200, answer.text
    assert (answer.json()["version"], answer.json()["data"]) == (2, {"status": "good"})


async def test_stale_conflicting_invalid_and_foreign_publishes_are_refused(
    exchange: httpx.AsyncClient, as_department: Tokens, tax_status: str
) -> None:
    tax = as_department("tax")
    await publish(exchange, tax, 2, {"status": "good"})

    older = await publish(exchange, tax, 1, {"status": "good"})
    changed = await publish(exchange, tax, 2, {"status": "arrears"})
    invalid = await publish(exchange, tax, 3, {"status": "unknown"})
    foreign = await publish(exchange, as_department("customs"), 3, {"status": "arrears"})

    assert [r.status_code for r in (older, changed, invalid, foreign)] == [409, 409, 400, 403]
    assert "/status" in invalid.json()["detail"]
    latest = await query(exchange, tax)
    assert (latest.json()["version"], latest.json()["data"]) == (2, {"status": "good"})


async def test_a_department_without_a_grant_cannot_query(
    exchange: httpx.AsyncClient, as_department: Tokens, tax_status: str
) -> None:
    await publish(exchange, as_department("tax"), 1, {"status": "good"})

    refused = await query(exchange, as_department("customs"))
    no_purpose = await exchange.get(
        f"/v1/datasets/{TAX_STATUS}/records/{USCC}", headers=as_department("customs")
    )

    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert no_purpose.status_code == 422


async def test_grantees_receive_published_records(
    exchange: httpx.AsyncClient, as_department: Tokens, tax_status: str
) -> None:
    await grant(exchange, as_department("statistics"), dataset=tax_status, fields=["status"])

    published = await publish(exchange, as_department("tax"), 1, {"status": "good"})

    page = await exchange.get(
        "/v1/deliveries", params={"wait": 5}, headers=as_department("statistics")
    )
    (event,) = page.json()["events"]
    assert (event["id"], event["subject"], event["data"]) == (
        published.json()["event_id"],
        USCC,
        {"status": "good"},
    )
