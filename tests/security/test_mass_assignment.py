"""Mass assignment: fields a caller may not set (status, USCC, level of assurance, department,
scopes, ids) are refused with 422 (every input model forbids unknown fields), never applied;
nothing is written.
"""

from __future__ import annotations

from typing import Any

import pytest
from security_world import (
    BUSINESS_REGISTERED,
    FULL,
    WAITS,
    World,
    assert_problem,
    resident_id,
    sample,
)

from tongban_kit.testing.callers import Department
from tongban_registration.testing import application

pytestmark = pytest.mark.node

FORGED_PERSON = [
    {"loa": "high"},
    {"acr": "high"},
    {"level_of_assurance": "substantial"},
    {"scopes": ["registration:review", "tongban:admin"]},
    {"id": "00000000-0000-4000-8000-000000000001"},
    {"node": "110000"},
]


@pytest.mark.parametrize("forged", sample(FORGED_PERSON), ids=lambda f: next(iter(f)))
def test_sign_up_refuses_fields_a_person_may_not_set(world: World, forged: dict[str, Any]) -> None:
    before = world.writes.snapshot()

    answer = world.api.post(
        "/identity/v1/persons",
        json={
            "resident_id": resident_id(100),
            "name": "马洛里",
            "phone": "13800138000",
            "password": "correct horse battery staple",
            **forged,
        },
    )

    assert_problem(answer, 422)
    assert world.writes.snapshot() == before


FORGED_APPLICATION = [
    {"status": "approved"},
    {"uscc": "91440300MA5FXXXXX0"},
    {"applicant": "someone-else"},
    {"id": "00000000-0000-4000-8000-000000000002"},
    {"acr": "high"},
    {"reviewer": "officer-1"},
]


@pytest.mark.parametrize("forged", sample(FORGED_APPLICATION), ids=lambda f: next(iter(f)))
def test_an_application_refuses_fields_an_applicant_may_not_set(
    world: World, forged: dict[str, Any]
) -> None:
    bob = world.headers(world.bob)
    before = world.writes.snapshot()

    answer = world.api.post(
        "/registration/v1/applications",
        json=application(name="深圳市马洛里科技有限公司", **forged),
        headers=bob,
    )

    assert_problem(answer, 422)
    assert world.writes.snapshot() == before


def test_a_draft_cannot_be_patched_into_another_state(world: World) -> None:
    bob = world.headers(world.bob)
    draft = world.draft(world.bob, name="深圳市鲍勃草稿科技有限公司")
    path = f"/registration/v1/applications/{draft['id']}"
    before = world.writes.snapshot()

    answers = [
        world.api.patch(path, json=forged, headers=bob)
        for forged in ({"status": "approved"}, {"uscc": "91440300MA5FXXXXX0"}, {"id": "x"})
    ]

    for answer in answers:
        assert_problem(answer, 422)
    assert world.writes.snapshot() == before
    now = world.api.get(path, headers=bob).json()
    assert (now["status"], now.get("uscc")) == (draft["status"], draft.get("uscc"))


FORGED_GRANT = [
    {"status": "granted"},
    {"department": "tax"},
    {"personal_allowed": True},
    {"webhook_secret": "whsec_chosen"},
    {"scopes": ["exchange:approve"]},
    {"decided_by": "approver"},
]


@pytest.mark.parametrize("forged", sample(FORGED_GRANT), ids=lambda f: next(iter(f)))
def test_a_grant_request_refuses_fields_a_department_may_not_set(
    world: World, forged: dict[str, Any]
) -> None:
    before = world.writes.snapshot()

    answer = world.api.post(
        "/exchange/v1/grants",
        json={
            "dataset": BUSINESS_REGISTERED,
            "purpose": "customs clearance of new businesses",
            "legal_basis": "海关法",
            "fields": ["uscc", "name"],
            "delivery": {"mode": "pull"},
            **forged,
        },
        headers=world.customs.headers,
    )

    assert_problem(answer, 422)
    assert world.writes.snapshot() == before


@pytest.mark.parametrize(
    "forged",
    sample([{"department": "statistics"}, {"event_id": "chosen"}, {"published_at": "2020-01-01"}]),
    ids=lambda f: next(iter(f)),
)
def test_a_publish_and_an_acknowledgement_refuse_fields_a_department_may_not_set(
    world: World, business: str, forged: dict[str, Any]
) -> None:
    before = world.writes.snapshot()

    published = world.api.put(
        "/exchange/v1/datasets/gov.tongban.tax.status.record.v1/records/k1",
        json={"version": 1, "data": {"status": "ok"}, **forged},
        headers=world.tax.headers,
    )
    acknowledged = world.api.post(
        "/exchange/v1/acknowledgements",
        json={"uscc": business, "reference": "TAX-FORGED", **forged},
        headers=world.tax.headers,
    )

    assert_problem(published, 422)
    assert_problem(acknowledged, 422)
    assert world.writes.snapshot() == before


FORGED_LICENCE_APPLICATION = [
    {"status": "approved"},
    {"licence_number": "RJ4403002026000001"},
    {"number": "RJ4403002026000001"},
    {"issued_at": "2020-01-01T00:00:00Z"},
    {"reviewer": "officer-1"},
    {"decided_by": "officer-1"},
    {"applicant": "someone-else"},
    {"valid_until": "2099-12-31"},
]


@pytest.mark.parametrize("forged", sample(FORGED_LICENCE_APPLICATION), ids=lambda f: next(iter(f)))
def test_a_licence_application_refuses_fields_an_applicant_may_not_set(
    world: World, business: str, forged: dict[str, Any]
) -> None:
    """Alice holds the business: without the forged field the application would be kept."""
    alice = world.headers(world.alice)
    before = world.writes.snapshot()

    answer = world.api.post(
        "/registration/v1/licence-applications",
        json={"uscc": business, "licence_type": WAITS, **forged},
        headers=alice,
    )

    assert_problem(answer, 422)
    assert world.writes.snapshot() == before


FORGED_DECISION = [
    {"licence_number": "RJ4403002026000001"},
    {"valid_until": "2099-12-31"},
    {"status": "active"},
    {"decided_by": "someone-else"},
]


@pytest.mark.skipif(not FULL, reason="make security only: enrols a licensing officer")
@pytest.mark.parametrize("forged", FORGED_DECISION, ids=lambda f: next(iter(f)))
def test_a_licensing_officer_cannot_set_more_than_a_decision_or_a_reason(
    world: World,
    licensing: Department,
    pending_licence: dict[str, Any],
    issued_licence: dict[str, Any],
    forged: dict[str, Any],
) -> None:
    officer = licensing.headers
    number = issued_licence["licence_number"]
    before = world.writes.snapshot()

    answers = [
        world.api.post(
            f"/registration/v1/licensing/applications/{pending_licence['id']}/decision",
            json={"decision": "approve", **forged},
            headers=officer,
        ),
        world.api.post(
            f"/registration/v1/licensing/licences/{number}/suspend",
            json={"reason": "检查发现问题", **forged},
            headers=officer,
        ),
    ]

    for answer in answers:
        assert_problem(answer, 422)
    assert world.writes.snapshot() == before
