"""Change filings: reviewed, applied to the register, names re-reserved, evented."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tongban_kit.settings import NodeSettings
from tongban_kit.testing import EventProbe, assert_valid_event
from tongban_registration.testing import Flow, Tokens


async def _decide(flow: Flow, filing_id: str, **decision: Any) -> Any:
    return await flow.client.post(
        f"/v1/review/changes/{filing_id}/decision", json=decision, headers=flow.officer
    )


async def test_an_approved_change_updates_the_register_moves_the_name_and_is_evented(
    live_flow: Flow,
    tokens: Tokens,
    node_settings: NodeSettings,
    new_application: Callable[..., dict[str, Any]],
) -> None:
    flow = live_flow
    old = new_application()
    uscc = (await flow.approved(old))["uscc"]
    new_name = "深圳市更名后科技有限公司"

    filed = await flow.client.post(
        f"/v1/businesses/{uscc}/changes",
        json={
            "name": new_name,
            "business_scope": "软件开发；人工智能应用软件开发",
            "legal_representative": {
                "name": "王五",
                "resident_id": "110105194912310021",
            },
        },
        headers=flow.applicant,
    )
    assert filed.status_code == 422  # that resident ID's check character is wrong
    filed = await flow.client.post(
        f"/v1/businesses/{uscc}/changes",
        json={
            "name": new_name,
            "business_scope": "软件开发；人工智能应用软件开发",
            "legal_representative": {"name": "王五", "resident_id": "11010519491231002X"},
        },
        headers=flow.applicant,
    )
    assert filed.status_code == 201, filed.text
    rival = await flow.client.post(
        "/v1/applications", json=new_application(name=new_name), headers=tokens.person()
    )
    second = await flow.client.post(
        f"/v1/businesses/{uscc}/changes", json={"business_scope": "x"}, headers=flow.applicant
    )
    queue = (await flow.client.get("/v1/review/changes", headers=flow.officer)).json()
    async with EventProbe(node_settings, "registration.events") as probe:
        approved = await _decide(flow, filed.json()["id"], decision="approve")
        events = await probe.collect(
            lambda seen: any(e.type.endswith("business.changed.v1") for e in seen)
        )
    public = (await flow.client.get(f"/v1/businesses/{uscc}")).json()
    old_name_free = await flow.client.post("/v1/applications", json=old, headers=tokens.person())

    assert filed.json()["changed"] == ["business_scope", "legal_representative", "name"]
    assert rival.status_code == 409  # the new name is reserved for the filing
    assert second.status_code == 409  # one filing at a time
    assert [f["id"] for f in queue] == [filed.json()["id"]]
    assert approved.status_code == 200, approved.text
    assert (public["name"], public["legal_representative"]) == (new_name, "王*")
    assert public["business_scope"] == "软件开发；人工智能应用软件开发"
    (event,) = [e for e in events if e.type.endswith("business.changed.v1")]
    assert_valid_event(event)
    assert event.data["changed"] == ["business_scope", "legal_representative", "name"]
    assert event.data["legal_representative"]["name"] == "王五"
    assert old_name_free.status_code == 201, old_name_free.text


async def test_a_rejected_change_releases_the_new_name_and_changes_nothing(
    flow: Flow, tokens: Tokens, new_application: Callable[..., dict[str, Any]]
) -> None:
    body = new_application()
    uscc = (await flow.approved(body))["uscc"]
    filed = await flow.client.post(
        f"/v1/businesses/{uscc}/changes",
        json={"name": "深圳市驳回更名科技有限公司"},
        headers=flow.applicant,
    )

    rejected = await _decide(flow, filed.json()["id"], decision="reject", reason="名称含有禁用字词")
    again = await _decide(flow, filed.json()["id"], decision="approve")
    freed = await flow.client.post(
        "/v1/applications",
        json=new_application(name="深圳市驳回更名科技有限公司"),
        headers=tokens.person(),
    )
    public = (await flow.client.get(f"/v1/businesses/{uscc}")).json()
    listed = await flow.client.get(f"/v1/businesses/{uscc}/changes", headers=flow.applicant)

    assert rejected.status_code == 200, rejected.text
    assert again.status_code == 409
    assert freed.status_code == 201
    assert public["name"] == body["name"]
    assert [f["status"] for f in listed.json()] == ["rejected"]


async def test_only_the_owner_files_changes(
    flow: Flow, tokens: Tokens, new_application: Callable[..., dict[str, Any]]
) -> None:
    uscc = (await flow.approved(new_application()))["uscc"]

    stranger = await flow.client.post(
        f"/v1/businesses/{uscc}/changes", json={"business_scope": "x"}, headers=tokens.person()
    )
    empty = await flow.client.post(
        f"/v1/businesses/{uscc}/changes", json={}, headers=flow.applicant
    )

    assert stranger.status_code == 404
    assert empty.status_code == 422
