"""Approval enters the business in the register under a valid USCC and tells the departments."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tongban_kit.events import CloudEvent
from tongban_kit.identifiers import InvalidIdentifier, validate_uscc
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import EventProbe, assert_valid_event, eventually, publish_events
from tongban_registration.applications.entity_types import EntityType
from tongban_registration.businesses.service import issue_uscc
from tongban_registration.testing import Flow

_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


@pytest.mark.parametrize("entity_type", list(EntityType))
def test_issued_usccs_pass_both_checks_and_any_one_changed_character_fails(
    entity_type: EntityType,
) -> None:
    for _ in range(20):
        uscc = issue_uscc(node="440300", entity_type=entity_type)
        assert validate_uscc(uscc) == uscc
        assert (uscc[0], uscc[2:8]) == ("9", "440300")
        for position in range(18):
            for other in _ALPHABET:
                if other == uscc[position]:
                    continue
                changed = uscc[:position] + other + uscc[position + 1 :]
                with pytest.raises(InvalidIdentifier):
                    validate_uscc(changed)


def test_stdnum_agrees_with_the_issued_codes() -> None:
    from stdnum.cn import uscc as oracle

    for _ in range(50):
        assert oracle.is_valid(issue_uscc(node="440300", entity_type=EntityType.LIMITED_COMPANY))


async def test_approval_registers_the_business_and_the_events_reach_kafka_valid(
    live_flow: Flow, node_settings: NodeSettings, new_application: Callable[..., dict[str, Any]]
) -> None:
    body = new_application()
    async with EventProbe(node_settings, "registration.events") as probe:
        approved = await live_flow.approved(body)
        events: list[CloudEvent] = await probe.collect(lambda seen: len(seen) >= 3)

    uscc = approved["uscc"]
    assert validate_uscc(uscc) == uscc
    assert approved["status"] == "approved"
    by_type = {e.type.split(".")[-2] + "." + e.type.split(".")[-3]: e for e in events}
    assert set(by_type) == {"submitted.application", "approved.application", "registered.business"}
    for event in events:
        assert_valid_event(event)
    registered = by_type["registered.business"]
    assert registered.subject == uscc
    assert registered.data["legal_representative"] == {
        "name": "张三",
        "resident_id": "11010519491231002X",
    }
    assert registered.data["registered_capital"] == {"amount": "1000000.00", "currency": "CNY"}
    assert registered.data["address"]["division_code"] == "440305"
    assert [i["share"] for i in registered.data["investors"]] == ["60", "40"]


async def test_rejected_and_returned_events_are_valid(
    live_flow: Flow, node_settings: NodeSettings, new_application: Callable[..., dict[str, Any]]
) -> None:
    async with EventProbe(node_settings, "registration.events") as probe:
        for decision in (
            {"decision": "reject", "reason": "名称含有禁用字词"},
            {"decision": "return", "problems": [{"field": "name", "problem": "请更换字号"}]},
        ):
            draft = await live_flow.draft(new_application())
            await live_flow.submit(draft["id"])
            await live_flow.claim(draft["id"])
            assert (await live_flow.decide(draft["id"], **decision)).status_code == 200
        events: list[CloudEvent] = await probe.collect(lambda seen: len(seen) >= 4)

    types = sorted(e.type for e in events)
    assert types == sorted(
        [
            "gov.tongban.registration.application.submitted.v1",
            "gov.tongban.registration.application.submitted.v1",
            "gov.tongban.registration.application.rejected.v1",
            "gov.tongban.registration.application.returned.v1",
        ]
    )
    for event in events:
        assert_valid_event(event)


async def test_the_public_register_shows_public_fields_only(
    flow: Flow, new_application: Callable[..., dict[str, Any]]
) -> None:
    approved = await flow.approved(new_application(name="深圳市公开查询科技有限公司"))
    uscc = approved["uscc"]

    profile = await flow.client.get(f"/v1/businesses/{uscc}")
    by_name = await flow.client.get("/v1/businesses", params={"q": "公开查询"})
    by_code = await flow.client.get("/v1/businesses", params={"q": uscc.lower()})
    wildcard = await flow.client.get("/v1/businesses", params={"q": "%%"})
    bad = await flow.client.get("/v1/businesses/91440300ABCDEFGH12")

    assert profile.status_code == 200
    public = profile.json()
    assert public["legal_representative"] == "张*"
    assert public["status"] == "active"
    for secret in ("11010519491231002X", "李四", "investors", "resident"):
        assert secret not in profile.text
    assert [b["uscc"] for b in by_name.json()["items"]] == [uscc]
    assert [b["uscc"] for b in by_code.json()["items"]] == [uscc]
    assert wildcard.json()["items"] == []
    assert bad.status_code == 404  # a malformed USCC names no business


async def test_a_revocation_shows_in_the_register_at_once_and_is_evented(
    live_flow: Flow, node_settings: NodeSettings, new_application: Callable[..., dict[str, Any]]
) -> None:
    approved = await live_flow.approved(new_application())
    uscc = approved["uscc"]
    async with EventProbe(node_settings, "registration.events") as probe:
        revoked = await live_flow.client.post(
            f"/v1/review/businesses/{uscc}/revoke",
            json={"reason": "虚假登记"},
            headers=live_flow.officer,
        )
        events = await probe.collect(
            lambda seen: any(e.type.endswith("business.revoked.v1") for e in seen)
        )
    again = await live_flow.client.post(
        f"/v1/review/businesses/{uscc}/revoke", json={"reason": "x"}, headers=live_flow.officer
    )
    by_applicant = await live_flow.client.post(
        f"/v1/review/businesses/{uscc}/revoke", json={"reason": "x"}, headers=live_flow.applicant
    )

    assert revoked.status_code == 200, revoked.text
    assert (await live_flow.client.get(f"/v1/businesses/{uscc}")).json()["status"] == "revoked"
    (event,) = [e for e in events if e.type.endswith("business.revoked.v1")]
    assert_valid_event(event)
    assert again.status_code == 409
    assert by_applicant.status_code == 403


async def test_departments_acknowledgements_reach_the_applicant_once_each(
    live_flow: Flow, node_settings: NodeSettings, new_application: Callable[..., dict[str, Any]]
) -> None:
    approved = await live_flow.approved(new_application())
    uscc = approved["uscc"]
    ack = CloudEvent.new(
        "gov.tongban.exchange.acknowledgement.recorded.v1",
        source="/nodes/440300/exchange",
        subject=uscc,
        data={
            "acknowledgement_id": "0b9f8a54-3d9c-4e8e-9a76-5d5d8f0e7a11",
            "uscc": uscc,
            "department": "tax",
            "reference": "SZ-TAX-42",
            "recorded_at": "2026-11-26T10:00:00+00:00",
        },
    )
    assert_valid_event(ack)
    await publish_events(node_settings, ack, times=2)  # delivered twice, applied once

    async def mine() -> dict[str, Any]:
        url = f"/v1/applications/{approved['id']}"
        return dict((await live_flow.client.get(url, headers=live_flow.applicant)).json())

    await eventually(mine, lambda a: bool(a["acknowledgements"]))
    await asyncio.sleep(0.5)  # a second application of the redelivery would show by now
    assert [a["reference"] for a in (await mine())["acknowledgements"]] == ["SZ-TAX-42"]
    public = (await live_flow.client.get(f"/v1/businesses/{uscc}")).json()
    assert [a["department"] for a in public["acknowledgements"]] == ["tax"]
