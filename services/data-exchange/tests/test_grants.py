"""Grants: default deny, the sharing class decides, owners approve, departments see their own."""

from __future__ import annotations

import httpx

from tongban_exchange.testing import Tokens, grant

PERSON_REGISTERED = "gov.tongban.identity.person.registered.v1"  # conditional, public-security
LOGIN_FAILED = "gov.tongban.identity.security.login_failed.v1"  # not shared


async def test_an_unconditional_dataset_is_granted_at_once(
    exchange: httpx.AsyncClient, as_department: Tokens
) -> None:
    body = await grant(exchange, as_department("tax"), fields=["uscc", "name"], mode="kafka")

    assert (body["status"], body["department"], body["fields"]) == (
        "granted",
        "tax",
        ["name", "uscc"],
    )
    assert body["webhook_secret"] is None


async def test_a_dataset_that_is_not_shared_is_refused_and_nothing_is_kept(
    exchange: httpx.AsyncClient, as_department: Tokens
) -> None:
    refused = await grant(
        exchange, as_department("tax"), dataset=LOGIN_FAILED, fields=["reason"], status=403
    )
    mine = await exchange.get("/v1/grants", headers=as_department("tax"))

    assert refused["status"] == 403
    assert mine.json() == []


async def test_a_conditional_dataset_waits_for_its_owner(
    exchange: httpx.AsyncClient, as_department: Tokens
) -> None:
    fields = ["person_id"]
    asked = await grant(exchange, as_department("tax"), dataset=PERSON_REGISTERED, fields=fields)
    grant_id = asked["id"]
    by_other = await exchange.post(
        f"/v1/grants/{grant_id}/approve", json={}, headers=as_department("customs")
    )
    waiting = await exchange.get("/v1/grants/requests", headers=as_department("public-security"))
    approved = await exchange.post(
        f"/v1/grants/{grant_id}/approve",
        json={"note": "needed for tax registration"},
        headers=as_department("public-security"),
    )
    twice = await exchange.post(
        f"/v1/grants/{grant_id}/deny", json={}, headers=as_department("public-security")
    )

    assert asked["status"] == "requested"
    assert by_other.status_code == 404  # another department cannot even see it
    assert [g["id"] for g in waiting.json()] == [grant_id]
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["decided_by"]) == (
        "granted",
        "public-security",
    )
    assert twice.status_code == 409


async def test_operators_decide_too_and_a_denial_is_final(
    exchange: httpx.AsyncClient, as_department: Tokens, as_operator: dict[str, str]
) -> None:
    asked = await grant(
        exchange, as_department("tax"), dataset=PERSON_REGISTERED, fields=["person_id"]
    )
    denied = await exchange.post(
        f"/v1/grants/{asked['id']}/deny", json={"note": "no legal basis"}, headers=as_operator
    )

    assert denied.json()["status"] == "denied"
    assert denied.json()["decision_note"] == "no legal basis"


async def test_a_department_sees_its_own_grants_only(
    exchange: httpx.AsyncClient, as_department: Tokens, as_operator: dict[str, str]
) -> None:
    tax = await grant(exchange, as_department("tax"), fields=["uscc"])
    stats = await grant(exchange, as_department("statistics"), fields=["uscc"])

    listed = await exchange.get("/v1/grants", headers=as_department("tax"))
    other = await exchange.get(f"/v1/grants/{stats['id']}", headers=as_department("tax"))
    everything = await exchange.get("/v1/grants", headers=as_operator)

    assert [g["id"] for g in listed.json()] == [tax["id"]]
    assert other.status_code == 404
    assert {g["id"] for g in everything.json()} == {tax["id"], stats["id"]}


async def test_bad_requests_are_problems(
    exchange: httpx.AsyncClient, as_department: Tokens, token_issuer: object
) -> None:
    unknown_field = await grant(exchange, as_department("tax"), fields=["tax_id"], status=400)
    unknown_dataset = await grant(
        exchange, as_department("tax"), dataset="gov.tongban.x.y.z.v1", fields=["a"], status=404
    )
    no_url = await grant(
        exchange, as_department("tax"), fields=["uscc"], mode="webhook", status=422
    )
    no_scope = await grant(
        exchange, as_department("tax", scope="exchange:query"), fields=["uscc"], status=403
    )

    assert "tax_id" in unknown_field["detail"]
    assert unknown_dataset["status"] == 404
    assert no_url["status"] == 422
    assert no_scope["status"] == 403
    assert (await exchange.get("/v1/grants", headers=as_department("tax"))).json() == []


async def test_revocation_is_allowed_to_the_grantee_and_the_owner(
    exchange: httpx.AsyncClient, as_department: Tokens
) -> None:
    body = await grant(exchange, as_department("tax"), fields=["uscc"])
    by_stranger = await exchange.post(
        f"/v1/grants/{body['id']}/revoke", headers=as_department("customs")
    )
    by_owner = await exchange.post(
        f"/v1/grants/{body['id']}/revoke", headers=as_department("market-regulation")
    )

    assert by_stranger.status_code == 404
    assert by_owner.json()["status"] == "revoked"
