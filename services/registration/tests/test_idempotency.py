"""Idempotency-Key on create, submit and decide: a replay answers the same and changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tongban_registration.testing import Flow, Tokens


async def test_a_replayed_create_returns_the_same_answer_and_creates_nothing(
    flow: Flow, new_application: Callable[..., dict[str, Any]], sql: Any
) -> None:
    body = new_application()
    headers = {**flow.applicant, "Idempotency-Key": "create-1"}

    first = await flow.client.post("/v1/applications", json=body, headers=headers)
    again = await flow.client.post("/v1/applications", json=body, headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert await sql("SELECT count(*) FROM applications") == [(1,)]


async def test_concurrent_replays_run_once(
    flow: Flow, new_application: Callable[..., dict[str, Any]], sql: Any
) -> None:
    body = new_application()
    headers = {**flow.applicant, "Idempotency-Key": "create-burst"}

    answers = await asyncio.gather(
        *(flow.client.post("/v1/applications", json=body, headers=headers) for _ in range(5))
    )

    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert await sql("SELECT count(*) FROM applications") == [(1,)]


async def test_the_same_key_with_another_body_is_a_409_problem(
    flow: Flow, new_application: Callable[..., dict[str, Any]], sql: Any
) -> None:
    headers = {**flow.applicant, "Idempotency-Key": "create-2"}
    await flow.client.post("/v1/applications", json=new_application(), headers=headers)

    other = await flow.client.post("/v1/applications", json=new_application(), headers=headers)

    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["idempotency_key"] == "create-2"
    assert await sql("SELECT count(*) FROM applications") == [(1,)]


async def test_keys_are_per_caller(
    flow: Flow, tokens: Tokens, new_application: Callable[..., dict[str, Any]], sql: Any
) -> None:
    mine = await flow.client.post(
        "/v1/applications",
        json=new_application(),
        headers={**flow.applicant, "Idempotency-Key": "shared-key"},
    )
    theirs = await flow.client.post(
        "/v1/applications",
        json=new_application(),
        headers={**tokens.person(), "Idempotency-Key": "shared-key"},
    )

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]


async def test_a_replayed_submit_and_decision_change_nothing_more(
    flow: Flow, new_application: Callable[..., dict[str, Any]], sql: Any
) -> None:
    draft = await flow.draft(new_application())
    submit = f"/v1/applications/{draft['id']}/submit"
    submit_headers = {**flow.applicant, "Idempotency-Key": "submit-1"}
    first_submit = await flow.client.post(submit, headers=submit_headers)
    replayed_submit = await flow.client.post(submit, headers=submit_headers)
    await flow.claim(draft["id"])
    decide = f"/v1/review/applications/{draft['id']}/decision"
    decide_headers = {**flow.officer, "Idempotency-Key": "decide-1"}
    first_decision = await flow.client.post(
        decide, json={"decision": "approve"}, headers=decide_headers
    )
    replayed_decision = await flow.client.post(
        decide, json={"decision": "approve"}, headers=decide_headers
    )

    assert first_submit.status_code == replayed_submit.status_code == 200
    assert replayed_submit.json() == first_submit.json()
    assert first_decision.status_code == replayed_decision.status_code == 200
    assert replayed_decision.json()["uscc"] == first_decision.json()["uscc"]
    assert await sql("SELECT count(*) FROM businesses") == [(1,)]
    assert await sql(
        "SELECT count(*) FROM application_transitions WHERE action IN ('submit', 'approve')"
    ) == [(2,)]
    # one submitted, one approved, one business registered: nothing twice
    assert await sql("SELECT count(*) FROM tongban_outbox") == [(3,)]
