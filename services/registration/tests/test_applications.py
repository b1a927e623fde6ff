"""Drafting an application: what it accepts, what it refuses, what it stores and shows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tongban_registration.testing import Flow, Tokens, application


async def test_a_person_drafts_an_application_with_the_name_reserved(
    flow: Flow, new_application: Callable[..., dict[str, Any]]
) -> None:
    body = new_application()
    draft = await flow.draft(body)

    assert draft["status"] == "draft"
    assert draft["allowed_actions"] == ["update", "submit", "withdraw"]
    assert draft["name"] == body["name"]
    assert draft["registered_capital"] == {"amount": "1000000.00", "currency": "CNY"}
    assert draft["name_reserved_until"] is not None
    assert draft["uscc"] is None
    assert [h["action"] for h in draft["history"]] == ["create"]


async def test_the_legal_representatives_resident_id_is_masked_in_answers_and_sealed_at_rest(
    flow: Flow, new_application: Callable[..., dict[str, Any]], sql: Any
) -> None:
    draft = await flow.draft(new_application())

    assert draft["legal_representative"] == {
        "name": "张三",
        "resident_id_masked": "110105********002X",
    }
    assert "11010519491231002X" not in str(draft)
    (stored,) = await sql("SELECT legal_representative_id FROM applications")
    assert b"11010519491231002X" not in bytes(stored[0])
    assert b"19491231" not in bytes(stored[0])


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (
            {"legal_representative": {"name": "张三", "resident_id": "110105194912310021"}},
            "resident_id",
        ),
        (
            {"investors": [{"name": "张三", "kind": "natural_person", "share": "99.99"}]},
            "investors",
        ),
        ({"entity_type": "trust"}, "entity_type"),
        ({"registered_capital": {"amount": "100", "currency": "USD"}}, "currency"),
        ({"registered_capital": {"amount": "-1"}}, "amount"),
        ({"status": "approved"}, "status"),
        ({"uscc": "91440300MA5EXAMPLE"}, "uscc"),
        ({"applicant": "someone-else"}, "applicant"),
    ],
)
async def test_invalid_or_unsettable_fields_are_422_and_create_nothing(
    app_client: httpx.AsyncClient,
    applicant: dict[str, str],
    change: dict[str, Any],
    where: str,
    sql: Any,
) -> None:
    response = await app_client.post(
        "/v1/applications", json=application(**change), headers=applicant
    )

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert where in str(response.json()["errors"])
    assert await sql("SELECT count(*) FROM applications") == [(0,)]


async def test_shares_that_sum_to_exactly_100_in_decimals_are_accepted(
    flow: Flow, new_application: Callable[..., dict[str, Any]]
) -> None:
    thirds = [
        {"name": f"投资人{i}", "kind": "natural_person", "share": share}
        for i, share in enumerate(["33.3333", "33.3333", "33.3334"])
    ]
    draft = await flow.draft(new_application(investors=thirds))

    assert [i["share"] for i in draft["investors"]] == ["33.3333", "33.3333", "33.3334"]


@pytest.mark.parametrize(
    ("division_code", "status"), [("310101", 400), ("440000", 400), ("12", 422)]
)
async def test_the_address_must_be_inside_this_node(
    app_client: httpx.AsyncClient,
    applicant: dict[str, str],
    division_code: str,
    status: int,
) -> None:
    body = application(address={"line": "某路1号", "division_code": division_code})
    response = await app_client.post("/v1/applications", json=body, headers=applicant)

    assert response.status_code == status, response.text


async def test_a_draft_can_be_patched_but_status_cannot_be_set(
    flow: Flow, new_application: Callable[..., dict[str, Any]]
) -> None:
    draft = await flow.draft(new_application())
    url = f"/v1/applications/{draft['id']}"

    patched = await flow.client.patch(
        url, json={"business_scope": "软件开发"}, headers=flow.applicant
    )
    sneaky = await flow.client.patch(url, json={"status": "approved"}, headers=flow.applicant)
    nulled = await flow.client.patch(url, json={"name": None}, headers=flow.applicant)

    assert patched.status_code == 200, patched.text
    assert patched.json()["business_scope"] == "软件开发"
    assert patched.json()["name"] == draft["name"]
    assert (sneaky.status_code, nulled.status_code) == (422, 422)
    assert (await flow.client.get(url, headers=flow.applicant)).json()["status"] == "draft"


async def test_another_persons_application_is_404_even_for_a_guessed_id(
    flow: Flow, tokens: Tokens, new_application: Callable[..., dict[str, Any]]
) -> None:
    draft = await flow.draft(new_application())
    stranger = tokens.person()
    url = f"/v1/applications/{draft['id']}"

    seen = await flow.client.get(url, headers=stranger)
    patched = await flow.client.patch(url, json={"business_scope": "x"}, headers=stranger)
    submitted = await flow.client.post(f"{url}/submit", headers=stranger)
    guessed = await flow.client.get(
        "/v1/applications/00000000-0000-4000-8000-000000000000", headers=flow.applicant
    )
    listed = await flow.client.get("/v1/applications", headers=stranger)

    assert (seen.status_code, patched.status_code, submitted.status_code) == (404, 404, 404)
    assert guessed.status_code == 404
    assert listed.json()["items"] == []


async def test_submitting_needs_substantial_assurance_and_says_how_to_step_up(
    flow: Flow, tokens: Tokens, new_application: Callable[..., dict[str, Any]]
) -> None:
    sub = "person-low-then-substantial"
    flow.applicant = tokens.person(sub, acr="low")
    draft = await flow.draft(new_application())

    low = await flow.client.post(f"/v1/applications/{draft['id']}/submit", headers=flow.applicant)
    stepped_up = await flow.client.post(
        f"/v1/applications/{draft['id']}/submit", headers=tokens.person(sub, acr="substantial")
    )

    assert low.status_code == 401
    assert "insufficient_user_authentication" in low.headers["www-authenticate"]
    assert low.json()["required_acr"] == "substantial"
    assert stepped_up.status_code == 200, stepped_up.text
    assert stepped_up.json()["status"] == "submitted"


async def test_a_department_token_cannot_apply(
    app_client: httpx.AsyncClient, token_issuer: Any
) -> None:
    token = token_issuer.mint(
        client_id="tax",
        department="tax",
        department_name="税务局",
        scope="exchange:acknowledge",
        drop=("acr", "amr", "auth_time"),
    )
    response = await app_client.post(
        "/v1/applications", json=application(), headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 403


async def test_submission_keeps_the_applicants_signature_and_the_digest_it_signs(
    flow: Flow, new_application: Callable[..., dict[str, Any]]
) -> None:
    draft = await flow.draft(new_application())
    jws = "eyJhbGciOiJFUzI1NiIsImI2NCI6ZmFsc2UsImNyaXQiOlsiYjY0Il19..c2lnbmF0dXJl"

    response = await flow.client.post(
        f"/v1/applications/{draft['id']}/submit", json={"signature": jws}, headers=flow.applicant
    )

    assert response.status_code == 200, response.text
    submitted = response.json()
    assert submitted["signature"] == jws
    assert len(submitted["document_sha256"]) == 64
    assert submitted["due_on"] is not None
