"""Simplified deregistration: a public notice, objections, completion by an officer, evented."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tongban_kit.settings import NodeSettings
from tongban_kit.testing import EventProbe, assert_valid_event
from tongban_registration.testing import Flow, Tokens


async def _request(flow: Flow, uscc: str, headers: dict[str, str] | None = None) -> Any:
    return await flow.client.post(
        f"/v1/businesses/{uscc}/deregistration",
        json={"reason": "经营期满，股东决议解散"},
        headers=headers or flow.applicant,
    )


async def test_only_the_owner_asks_and_the_notice_must_run_out_before_completion(
    live_flow: Flow,
    tokens: Tokens,
    node_settings: NodeSettings,
    new_application: Callable[..., dict[str, Any]],
    sql: Any,
) -> None:
    flow = live_flow
    body = new_application()
    uscc = (await flow.approved(body))["uscc"]

    stranger = await _request(flow, uscc, tokens.person())
    asked = await _request(flow, uscc)
    too_early = await flow.client.post(
        f"/v1/review/businesses/{uscc}/deregistration/complete", headers=flow.officer
    )
    await sql("UPDATE businesses SET objection_deadline = now() - interval '1 second'")
    async with EventProbe(node_settings, "registration.events") as probe:
        completed = await flow.client.post(
            f"/v1/review/businesses/{uscc}/deregistration/complete", headers=flow.officer
        )
        events = await probe.collect(
            lambda seen: any(e.type.endswith("business.deregistered.v1") for e in seen)
        )
    name_again = await flow.client.post("/v1/applications", json=body, headers=tokens.person())

    assert stranger.status_code == 404
    assert asked.status_code == 200, asked.text
    assert asked.json()["status"] == "deregistering"
    assert asked.json()["objection_deadline"] is not None
    assert too_early.status_code == 409
    assert completed.status_code == 200, completed.text
    assert completed.json()["status"] == "deregistered"
    (event,) = [e for e in events if e.type.endswith("business.deregistered.v1")]
    assert_valid_event(event)
    assert event.subject == uscc
    assert name_again.status_code == 201, name_again.text


async def test_an_objection_during_the_notice_keeps_the_business_active(
    flow: Flow, tokens: Tokens, new_application: Callable[..., dict[str, Any]]
) -> None:
    uscc = (await flow.approved(new_application()))["uscc"]
    await _request(flow, uscc)

    objected = await flow.client.post(
        f"/v1/businesses/{uscc}/objections",
        json={"objection": "尚欠货款 12 万元未清偿"},
        headers=tokens.person(),
    )
    complete = await flow.client.post(
        f"/v1/review/businesses/{uscc}/deregistration/complete", headers=flow.officer
    )
    public = (await flow.client.get(f"/v1/businesses/{uscc}")).json()

    assert objected.status_code == 200, objected.text
    assert public["status"] == "active"
    assert complete.status_code == 409


async def test_deregistering_needs_substantial_assurance(
    flow: Flow, tokens: Tokens, new_application: Callable[..., dict[str, Any]]
) -> None:
    sub = "owner-who-signed-in-low"
    flow.applicant = tokens.person(sub)
    uscc = (await flow.approved(new_application()))["uscc"]

    low = await _request(flow, uscc, tokens.person(sub, acr="low"))

    assert low.status_code == 401
