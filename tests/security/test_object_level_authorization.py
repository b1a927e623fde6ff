"""Object-level authorization: one caller's objects requested by another, by id or by guessing.

Every request goes through the gateway with a valid token of the wrong caller. Each is refused
with 403 or 404 as problem+json, the answer holds nothing of the owner's, and nothing is
written (row counts of every service before and after).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from security_world import PDF, WAITS, World, assert_problem, resident_id

pytestmark = pytest.mark.node


def test_one_applicant_cannot_read_or_change_anothers_application(world: World) -> None:
    alice = world.draft(
        world.alice,
        name="深圳市爱丽丝对象测试科技有限公司",
        legal_representative={"name": "爱丽丝", "resident_id": resident_id(1)},
    )
    bob = world.headers(world.bob)
    path = f"/registration/v1/applications/{alice['id']}"
    before = world.writes.snapshot()

    answers = [
        world.api.get(path, headers=bob),
        world.api.patch(path, json={"name": "深圳市鲍勃改名科技有限公司"}, headers=bob),
        world.api.post(f"{path}/submit", headers=bob),
        world.api.post(f"{path}/withdraw", headers=bob),
        world.api.get(f"/registration/v1/review/applications/{alice['id']}", headers=bob),
    ]
    listed = world.api.get("/registration/v1/applications", headers=bob)

    for answer in answers:
        assert_problem(answer, 401, 403, 404)
        assert "爱丽丝" not in answer.text
        assert resident_id(1) not in answer.text
    assert listed.status_code == 200
    assert alice["id"] not in listed.text
    assert world.writes.snapshot() == before
    mine = world.api.get(path, headers=world.headers(world.alice)).json()
    assert (mine["name"], mine["status"]) == (alice["name"], alice["status"])


def test_guessed_application_ids_find_nothing(world: World) -> None:
    bob = world.headers(world.bob)
    before = world.writes.snapshot()

    guesses = [str(uuid.uuid4()) for _ in range(5)] + ["1", "0", "%00", "null"]
    answers = [world.api.get(f"/registration/v1/applications/{g}", headers=bob) for g in guesses]

    for answer in answers:
        assert_problem(answer, 404, 422)
    assert world.writes.snapshot() == before


def test_a_person_cannot_read_another_persons_record(world: World) -> None:
    bob = world.headers(world.bob)
    before = world.writes.snapshot()

    answers = [
        world.api.get(f"/identity/v1/persons/{world.alice.id}", headers=bob),
        world.api.get(f"/identity/v1/persons/{world.alice.id}/pairwise/tax", headers=bob),
        world.api.get(f"/identity/v1/admin/persons/{world.alice.id}/scopes", headers=bob),
        world.api.post(
            f"/identity/v1/persons/{world.alice.id}/assurance/substantial",
            json={"source": "household-register"},
            headers=bob,
        ),
    ]

    for answer in answers:
        assert_problem(answer, 403, 404)
        assert "爱丽丝" not in answer.text
        assert resident_id(1) not in answer.text
    assert world.writes.snapshot() == before


def test_one_department_cannot_read_or_revoke_anothers_grant(
    world: World, tax_grant: dict[str, Any]
) -> None:
    grant = tax_grant
    statistics = world.statistics.headers
    path = f"/exchange/v1/grants/{grant['id']}"
    before = world.writes.snapshot()

    answers = [
        world.api.get(path, headers=statistics),
        world.api.post(f"{path}/revoke", headers=statistics),
        world.api.post(f"{path}/approve", json={"note": "mine now"}, headers=statistics),
        world.api.post(f"{path}/deny", json={"note": "not yours"}, headers=statistics),
        world.api.get(f"/exchange/v1/grants/{uuid.uuid4()}", headers=statistics),
    ]
    listed = world.api.get("/exchange/v1/grants", headers=statistics)

    for answer in answers:
        assert_problem(answer, 403, 404)
        assert grant["purpose"] not in answer.text
    assert grant["id"] not in listed.text
    assert world.writes.snapshot() == before
    still = world.api.get(path, headers=world.tax.headers).json()
    assert still["status"] == grant["status"]


def test_a_department_cannot_redeliver_or_pull_anothers_deliveries(
    world: World, business: str
) -> None:
    """Tax holds a grant and a delivery; customs (no grant at all) guesses delivery ids."""
    customs = world.customs.headers
    before = world.writes.snapshot()

    redelivered = [
        world.api.post(f"/exchange/v1/deliveries/{n}/redeliver", headers=customs)
        for n in range(1, 21)
    ]
    pulled = world.api.get("/exchange/v1/deliveries", params={"wait": 0}, headers=customs)
    undelivered = world.api.get("/exchange/v1/deliveries/undelivered", headers=customs)

    for answer in redelivered:
        assert_problem(answer, 403, 404)
    assert pulled.status_code == 200
    assert pulled.json()["events"] == []
    assert undelivered.status_code == 200
    assert undelivered.json() == []
    assert world.writes.snapshot() == before


def test_a_business_is_changed_or_closed_only_by_whoever_registered_it(
    world: World, business: str
) -> None:
    bob = world.substantial(world.bob)
    before = world.writes.snapshot()

    answers = [
        world.api.post(
            f"/registration/v1/businesses/{business}/deregistration",
            json={"reason": "not mine to close"},
            headers=bob,
        ),
        world.api.post(
            f"/registration/v1/businesses/{business}/changes",
            json={"business_scope": "鲍勃的经营范围"},
            headers=bob,
        ),
        world.api.get(f"/registration/v1/businesses/{business}/changes", headers=bob),
        world.api.post(
            f"/registration/v1/review/businesses/{business}/revoke",
            json={"reason": "not an officer"},
            headers=bob,
        ),
    ]

    for answer in answers:
        assert_problem(answer, 403, 404, 422)
    assert world.writes.snapshot() == before
    profile = world.api.get(f"/registration/v1/businesses/{business}").json()
    assert profile["status"] == "active"


def test_one_person_cannot_read_or_act_on_anothers_licence_application_or_licence(
    world: World,
    business: str,
    pending_licence: dict[str, Any],
    issued_licence: dict[str, Any],
) -> None:
    bob = world.headers(world.bob)
    number = issued_licence["licence_number"]
    applications = "/registration/v1/licence-applications"
    before = world.writes.snapshot()

    answers = [
        world.api.get(f"{applications}/{pending_licence['id']}", headers=bob),
        world.api.get(f"{applications}/{issued_licence['id']}", headers=bob),
        world.api.get(f"/registration/v1/licences/{number}", headers=bob),
        world.api.post(f"/registration/v1/licences/{number}/renew", headers=bob),
        world.api.post(applications, json={"uscc": business, "licence_type": WAITS}, headers=bob),
        world.api.get(
            f"/registration/v1/businesses/{business}/licence-types/{WAITS}/prerequisites",
            headers=bob,
        ),
    ]
    listed = world.api.get(applications, headers=bob)

    for answer in answers:
        assert_problem(answer, 403, 404)
        assert "爱丽丝" not in answer.text
        assert issued_licence["licence"]["jws"] not in answer.text
    assert listed.status_code == 200
    assert pending_licence["id"] not in listed.text
    assert issued_licence["id"] not in listed.text
    assert world.writes.snapshot() == before
    alice = world.headers(world.alice)
    mine = world.api.get(f"{applications}/{pending_licence['id']}", headers=alice).json()
    assert mine["status"] == "submitted"
    licence = world.api.get(f"/registration/v1/licences/{number}", headers=alice).json()
    assert licence["valid_until"] == issued_licence["licence"]["valid_until"]


def test_one_applicant_cannot_upload_to_list_or_download_anothers_documents(
    world: World, alice_document: tuple[str, dict[str, Any]]
) -> None:
    application_id, document = alice_document
    bobs_own = world.draft(world.bob, name="深圳市鲍勃文件科技有限公司")["id"]
    bob = world.headers(world.bob)
    path = f"/registration/v1/applications/{application_id}/documents"
    before = world.writes.snapshot()

    answers = [
        world.api.post(
            path,
            params={"filename": "鲍勃.pdf"},
            content=PDF,
            headers={**bob, "content-type": "application/pdf"},
        ),
        world.api.get(path, headers=bob),
        world.api.get(f"{path}/{document['id']}", headers=bob),
        # Alice's document asked for under Bob's own application.
        world.api.get(
            f"/registration/v1/applications/{bobs_own}/documents/{document['id']}", headers=bob
        ),
        # A department is no applicant and no officer of registration.
        world.api.get(f"{path}/{document['id']}", headers=world.tax.headers),
    ]

    for answer in answers:
        assert_problem(answer, 403, 404)
        assert document["sha256"] not in answer.text
        assert PDF not in answer.content
    assert world.writes.snapshot() == before
    listed = world.api.get(path, headers=world.headers(world.alice)).json()
    assert [d["id"] for d in listed["items"]] == [document["id"]]
