"""The message log: a hash chain of every delivery, publish and query; verification names the
row that was edited, deleted or moved."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tongban_exchange.log import command
from tongban_exchange.testing import Tokens

DATASET = "gov.tongban.tax.status.record.v1"


@pytest.fixture
async def logged(
    exchange: httpx.AsyncClient, as_department: Tokens, as_operator: dict[str, str]
) -> int:
    """Five publishes, logged in order; returns the number of rows."""
    response = await exchange.post(
        "/v1/datasets",
        json={
            "name": DATASET,
            "owner": "tax",
            "title": "Tax status",
            "schema": {"type": "object", "properties": {"status": {"type": "string"}}},
            "sharing": "unconditional",
        },
        headers=as_operator,
    )
    assert response.status_code == 201
    results = await asyncio.gather(
        *(
            exchange.put(
                f"/v1/datasets/{DATASET}/records/K{n}",
                json={"version": 1, "data": {"status": "good"}},
                headers=as_department("tax"),
            )
            for n in range(5)
        )
    )
    assert all(r.status_code == 201 for r in results)
    return 5


async def _sql(database: str, *statements: str) -> None:
    engine = create_async_engine(database)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def _verify(exchange: httpx.AsyncClient, operator: dict[str, str]) -> dict[str, object]:
    response = await exchange.get("/v1/audit/verify", headers=operator)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_concurrent_appends_make_one_unbroken_chain(
    exchange: httpx.AsyncClient, as_operator: dict[str, str], logged: int
) -> None:
    report = await _verify(exchange, as_operator)

    assert (report["ok"], report["rows"], report["head_seq"]) == (True, logged, logged)


async def test_editing_one_row_fails_verification_naming_that_row(
    exchange: httpx.AsyncClient,
    as_operator: dict[str, str],
    logged: int,
    database: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _sql(database, "UPDATE message_log SET recipient = 'customs' WHERE seq = 3")

    report = await _verify(exchange, as_operator)
    exit_code = await asyncio.to_thread(command.main, ["verify", "--database-url", database])

    assert report["ok"] is False
    assert report["findings"] == [
        {"seq": 3, "problem": "row 3 was altered: it does not match its hash"}
    ]
    assert exit_code == 1
    assert "FAIL seq 3: row 3 was altered" in capsys.readouterr().out


async def test_a_deleted_row_is_named(
    exchange: httpx.AsyncClient, as_operator: dict[str, str], logged: int, database: str
) -> None:
    await _sql(database, "DELETE FROM message_log WHERE seq = 2")

    report = await _verify(exchange, as_operator)

    assert [f["seq"] for f in report["findings"]] == [2, 3]  # type: ignore[attr-defined]
    assert "missing" in report["findings"][0]["problem"]  # type: ignore[index]


async def test_swapped_rows_are_named(
    exchange: httpx.AsyncClient, as_operator: dict[str, str], logged: int, database: str
) -> None:
    await _sql(
        database,
        "UPDATE message_log SET seq = -2 WHERE seq = 2",
        "UPDATE message_log SET seq = 2 WHERE seq = 4",
        "UPDATE message_log SET seq = 4 WHERE seq = -2",
    )

    report = await _verify(exchange, as_operator)

    named = {f["seq"] for f in report["findings"]}  # type: ignore[attr-defined]
    assert {2, 4} <= named


async def test_only_operators_verify(exchange: httpx.AsyncClient, as_department: Tokens) -> None:
    response = await exchange.get("/v1/audit/verify", headers=as_department("tax"))

    assert response.status_code == 403
