"""The application state machine, its 409s, and the append-only history the applicant sees."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError

from tongban_registration.testing import Flow


async def test_an_illegal_transition_is_409_naming_the_state_and_what_is_allowed(
    flow: Flow, new_application: Callable[..., dict[str, Any]]
) -> None:
    draft = await flow.draft(new_application())

    claimed_draft = await flow.client.post(
        f"/v1/review/applications/{draft['id']}/claim", headers=flow.officer
    )
    await flow.submit(draft["id"])
    again = await flow.client.post(f"/v1/applications/{draft['id']}/submit", headers=flow.applicant)
    decided_unclaimed = await flow.decide(draft["id"], decision="approve")

    assert claimed_draft.status_code == 404  # officers never see drafts
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["current_status"] == "submitted"
    assert again.json()["allowed_actions"] == ["withdraw"]
    assert decided_unclaimed.status_code == 409
    assert decided_unclaimed.json()["allowed_actions"] == ["claim"]


async def test_a_return_lists_every_problem_and_the_corrected_application_is_resubmitted(
    flow: Flow, new_application: Callable[..., dict[str, Any]]
) -> None:
    draft = await flow.draft(new_application())
    await flow.submit(draft["id"])
    await flow.claim(draft["id"])
    problems = [
        {"field": "business_scope", "problem": "使用规范经营范围表述"},
        {"field": "address", "problem": "门牌号不完整"},
    ]

    returned = await flow.decide(draft["id"], decision="return", problems=problems)
    fixed = await flow.client.patch(
        f"/v1/applications/{draft['id']}",
        json={"business_scope": "软件开发；信息系统集成服务"},
        headers=flow.applicant,
    )
    resubmitted = await flow.submit(draft["id"])
    reclaimed = await flow.claim(draft["id"])

    assert returned.status_code == 200, returned.text
    assert returned.json()["status"] == "returned"
    assert returned.json()["problems"] == problems
    assert fixed.status_code == 200
    assert resubmitted["status"] == "resubmitted"
    assert resubmitted["problems"] is None
    assert reclaimed["status"] == "under_review"


async def test_a_return_without_problems_or_a_rejection_without_reason_is_refused(
    flow: Flow, new_application: Callable[..., dict[str, Any]]
) -> None:
    draft = await flow.draft(new_application())
    await flow.submit(draft["id"])
    await flow.claim(draft["id"])

    bare_return = await flow.decide(draft["id"], decision="return", problems=[])
    bare_reject = await flow.decide(draft["id"], decision="reject")

    assert (bare_return.status_code, bare_reject.status_code) == (422, 422)


async def test_the_applicant_sees_the_whole_history_with_actors_roles_and_reasons(
    flow: Flow, new_application: Callable[..., dict[str, Any]]
) -> None:
    draft = await flow.draft(new_application())
    await flow.submit(draft["id"])
    await flow.claim(draft["id"])
    await flow.decide(draft["id"], decision="reject", reason="经营范围涉及前置许可")

    seen = (await flow.client.get(f"/v1/applications/{draft['id']}", headers=flow.applicant)).json()

    assert [
        (h["action"], h["from_status"], h["to_status"], h["actor_role"]) for h in seen["history"]
    ] == [
        ("create", None, "draft", "applicant"),
        ("submit", "draft", "submitted", "applicant"),
        ("claim", "submitted", "under_review", "officer"),
        ("reject", "under_review", "rejected", "officer"),
    ]
    assert seen["history"][-1]["reason"] == "经营范围涉及前置许可"
    assert seen["status"] == "rejected"
    assert seen["allowed_actions"] == []


async def test_the_history_cannot_be_changed_or_deleted_even_in_sql(
    flow: Flow, new_application: Callable[..., dict[str, Any]], sql: Any
) -> None:
    await flow.draft(new_application())

    with pytest.raises(DBAPIError, match="append-only"):
        await sql("UPDATE application_transitions SET actor = 'someone else'")
    with pytest.raises(DBAPIError, match="append-only"):
        await sql("DELETE FROM application_transitions")
    assert await sql("SELECT count(*) FROM application_transitions") == [(1,)]


async def test_withdrawing_before_a_decision_releases_the_name_and_after_one_is_409(
    flow: Flow, new_application: Callable[..., dict[str, Any]]
) -> None:
    body = new_application()
    first = await flow.draft(body)
    await flow.submit(first["id"])
    withdrawn = await flow.client.post(
        f"/v1/applications/{first['id']}/withdraw", json={"reason": "改名"}, headers=flow.applicant
    )
    second = await flow.draft(body)  # the same name is free again
    approved = await flow.approved(new_application())
    too_late = await flow.client.post(
        f"/v1/applications/{approved['id']}/withdraw", headers=flow.applicant
    )

    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "withdrawn"
    assert second["status"] == "draft"
    assert too_late.status_code == 409
    assert too_late.json()["current_status"] == "approved"


async def test_only_the_claiming_officer_decides_and_only_officers_of_this_node_review(
    flow: Flow, tokens: Any, new_application: Callable[..., dict[str, Any]]
) -> None:
    draft = await flow.draft(new_application())
    await flow.submit(draft["id"])
    await flow.claim(draft["id"])

    other = await flow.client.post(
        f"/v1/review/applications/{draft['id']}/decision",
        json={"decision": "approve"},
        headers=tokens.officer("officer-2"),
    )
    elsewhere = await flow.client.get(
        "/v1/review/applications", headers=tokens.officer(node="310000")
    )
    a_person = await flow.client.get("/v1/review/applications", headers=flow.applicant)

    assert other.status_code == 403
    assert elsewhere.status_code == 403
    assert a_person.status_code == 403
