"""Accreditation licences (证照分离): prerequisites told at once, application and review,
a signed licence verifiable offline and publicly, its life (renew, suspend, reinstate,
revoke, expire) evented, and deregistration revoking it. A real identity signs."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import KeySet

from tongban_identity.signatures.testing import mint_token
from tongban_kit.testing import EventProbe, assert_valid_event, running_app
from tongban_registration.main import create_app
from tongban_registration.settings import RegistrationSettings
from tongban_registration.testing import Flow

FOOD_SCOPE = "食品销售；餐饮服务；软件开发"
LICENCE_TYPES = [
    {
        "code": "food-operation",
        "name": "食品经营许可证",
        "number_prefix": "JY",
        "scope_covers": ["食品销售", "餐饮服务"],
        "validity_days": 1825,
    },
    {
        "code": "small-catering",
        "name": "小餐饮经营许可证",
        "number_prefix": "XC",
        "scope_covers": ["餐饮服务"],
        "requires_licences": ["food-operation"],
        "validity_days": 365,
        "instant_approval": True,
    },
]


@dataclass
class Licensing:
    flow: Flow
    node: Any
    settings: RegistrationSettings

    async def business(self, body: dict[str, Any]) -> str:
        return str((await self.flow.approved(body))["uscc"])

    async def apply(self, uscc: str, kind: str, **headers: str) -> httpx.Response:
        return await self.flow.client.post(
            "/v1/licence-applications",
            json={"uscc": uscc, "licence_type": kind},
            headers={**self.flow.applicant, **headers},
        )

    async def decide(self, application_id: str, **decision: Any) -> httpx.Response:
        return await self.flow.client.post(
            f"/v1/licensing/applications/{application_id}/decision",
            json=decision,
            headers=self.flow.officer,
        )

    async def licensed(self, uscc: str) -> dict[str, Any]:
        """Apply for a food operation licence and have an officer approve it."""
        applied = await self.apply(uscc, "food-operation")
        assert applied.status_code == 201, applied.text
        decided = await self.decide(applied.json()["id"], decision="approve")
        assert decided.status_code == 200, decided.text
        return dict(decided.json()["licence"])

    async def act(self, number: str, action: str, reason: str = "检查发现问题") -> httpx.Response:
        return await self.flow.client.post(
            f"/v1/licensing/licences/{number}/{action}",
            json={"reason": reason},
            headers=self.flow.officer,
        )

    async def verify(self, **params: str) -> dict[str, Any]:
        response = await self.flow.client.get("/v1/licences/verify", params=params)
        assert response.status_code == 200, response.text
        return dict(response.json())


async def _settings(node: Any, database: str, tmp_path: Path, **more: Any) -> RegistrationSettings:
    """Registration enrolled at identity, with this test's licence types."""
    client_id = await node.enrol_registration(tmp_path / "registration.pem")
    return RegistrationSettings(
        database_url=database,
        node=node.settings,
        client_id=client_id,
        client_key_file=tmp_path / "registration.pem",
        licence_types=LICENCE_TYPES,
        **more,
    )


@pytest.fixture
async def licensing(node: Any, database: str, tmp_path: Path) -> AsyncIterator[Licensing]:
    settings = await _settings(
        node, database, tmp_path, run_workers=False, deregistration_notice_days=0
    )
    person = await mint_token(
        node.identity, subject="6b1f7a52-0d7e-4a8e-9f00-000000000002", acr="substantial"
    )
    officer = await mint_token(
        node.identity,
        "registration:review",
        "registration:licensing",
        subject="officer-7",
        acr="high",
    )
    async with running_app(create_app(settings)) as client:
        flow = Flow(
            client, {"Authorization": f"Bearer {person}"}, {"Authorization": f"Bearer {officer}"}
        )
        yield Licensing(flow, node, settings)


def _offline_verify(payload: str, document_jwks: dict[str, Any]) -> dict[str, Any]:
    encoded, _, compact = payload.partition("~")
    raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    verified = jws.deserialize_compact(compact, KeySet.import_key_set(document_jwks))
    if verified.payload.decode() != hashlib.sha256(raw).hexdigest():
        raise ValueError("the document does not match the signed digest")
    return dict(json.loads(raw))


async def test_every_unmet_prerequisite_is_listed_at_once_and_nothing_is_created(
    licensing: Licensing, new_application: Callable[..., dict[str, Any]], sql: Any
) -> None:
    uscc = await licensing.business(new_application(business_scope="软件开发"))

    checked = await licensing.flow.client.get(
        f"/v1/businesses/{uscc}/licence-types/small-catering/prerequisites",
        headers=licensing.flow.applicant,
    )
    refused = await licensing.apply(uscc, "small-catering")
    unknown = await licensing.apply(uscc, "fireworks")
    unknown_checked = await licensing.flow.client.get(
        f"/v1/businesses/{uscc}/licence-types/fireworks/prerequisites",
        headers=licensing.flow.applicant,
    )

    assert checked.json()["met"] is False
    assert [u["prerequisite"] for u in checked.json()["unmet"]] == ["business_scope", "licence"]
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["unmet_prerequisites"] == checked.json()["unmet"]
    assert unknown.status_code == 400
    assert unknown_checked.status_code == 404
    assert unknown_checked.headers["content-type"] == "application/problem+json"
    assert await sql("SELECT count(*) FROM licence_applications") == [(0,)]


async def test_an_approved_licence_is_signed_and_verifies_offline_by_payload_and_number(
    licensing: Licensing, new_application: Callable[..., dict[str, Any]]
) -> None:
    uscc = await licensing.business(new_application(business_scope=FOOD_SCOPE))
    applied = await licensing.apply(uscc, "food-operation")
    waiting = await licensing.flow.client.get(
        "/v1/licensing/applications", headers=licensing.flow.officer
    )
    decided = await licensing.decide(applied.json()["id"], decision="approve")
    licence = decided.json()["licence"]
    async with httpx.AsyncClient() as phone:
        document_jwks = (
            await phone.get(f"{licensing.node.identity_url}/.well-known/document-jwks.json")
        ).json()

    document = _offline_verify(licence["qr_payload"], document_jwks)
    by_payload = await licensing.verify(payload=licence["qr_payload"])
    by_number = await licensing.verify(number=licence["number"])
    forged = dict(document, valid_until="2099-12-31")
    forged_b64 = base64.urlsafe_b64encode(
        json.dumps(forged, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    ).rstrip(b"=")
    tampered = forged_b64.decode() + "~" + licence["qr_payload"].partition("~")[2]

    assert applied.status_code == 201
    assert applied.json()["status"] == "submitted"
    assert applied.json()["id"] in [a["id"] for a in waiting.json()["items"]]
    assert decided.status_code == 200
    assert decided.json()["status"] == "approved"
    assert licence["number"].startswith("JY440300")
    assert (document["uscc"], document["licence_type"]) == (uscc, "food-operation")
    assert document["valid_until"] == licence["valid_until"]
    assert by_payload == {**by_payload, "valid": True, "kind": "accreditation-licence"}
    assert (by_payload["status"], by_number["status"]) == ("active", "active")
    assert by_number["licence_number"] == licence["number"]
    with pytest.raises(ValueError, match="does not match"):
        _offline_verify(tampered, document_jwks)
    assert (await licensing.verify(payload=tampered))["valid"] is False
    assert (await licensing.verify(number="JY4403002026999999"))["valid"] is False


async def test_instant_approval_issues_at_once_when_the_required_licence_is_held(
    licensing: Licensing, new_application: Callable[..., dict[str, Any]]
) -> None:
    uscc = await licensing.business(new_application(business_scope=FOOD_SCOPE))
    without = await licensing.apply(uscc, "small-catering")
    await licensing.licensed(uscc)

    instant = await licensing.apply(uscc, "small-catering")
    again = await licensing.apply(uscc, "small-catering")

    assert without.status_code == 409
    assert [u["prerequisite"] for u in without.json()["unmet_prerequisites"]] == ["licence"]
    assert instant.status_code == 201, instant.text
    assert instant.json()["status"] == "approved"
    assert instant.json()["licence"]["number"].startswith("XC")
    assert again.status_code == 409


async def test_suspend_reinstate_revoke_show_at_verification_and_are_kept_in_history(
    licensing: Licensing, new_application: Callable[..., dict[str, Any]], sql: Any
) -> None:
    uscc = await licensing.business(new_application(business_scope=FOOD_SCOPE))
    licence = await licensing.licensed(uscc)
    number, payload = licence["number"], licence["qr_payload"]

    suspended = await licensing.act(number, "suspend")
    while_suspended = await licensing.verify(payload=payload)
    renew_suspended = await licensing.flow.client.post(
        f"/v1/licences/{number}/renew", headers=licensing.flow.applicant
    )
    reinstated = await licensing.act(number, "reinstate", "整改完成")
    after_reinstating = await licensing.verify(number=number)
    revoked = await licensing.act(number, "revoke", "严重违法")
    after_revoking = await licensing.verify(payload=payload)
    revoked_again = await licensing.act(number, "revoke")
    reinstated_revoked = await licensing.act(number, "reinstate")
    mine = await licensing.flow.client.get(
        f"/v1/licences/{number}", headers=licensing.flow.applicant
    )

    assert suspended.status_code == 200
    assert suspended.json()["status"] == "suspended"
    assert while_suspended["status"] == "suspended"
    assert renew_suspended.status_code == 409
    assert reinstated.status_code == 200
    assert after_reinstating["status"] == "active"
    assert revoked.status_code == 200
    assert after_revoking["status"] == "revoked"
    assert (revoked_again.status_code, reinstated_revoked.status_code) == (409, 409)
    assert [h["action"] for h in mine.json()["history"]] == [
        "issue",
        "suspend",
        "reinstate",
        "revoke",
    ]
    with pytest.raises(Exception, match="append-only"):
        await sql("UPDATE licence_history SET reason = 'rewritten'")
    types = [row[0] for row in await sql("SELECT event_type FROM tongban_outbox ORDER BY seq")]
    assert [t.rsplit(".", 2)[1] for t in types if ".licence." in t] == [
        "issued",
        "suspended",
        "reinstated",
        "revoked",
    ]


async def test_renewal_extends_validity_resigns_and_the_old_payload_reads_superseded(
    licensing: Licensing, new_application: Callable[..., dict[str, Any]]
) -> None:
    uscc = await licensing.business(new_application(business_scope=FOOD_SCOPE))
    old = await licensing.licensed(uscc)

    renewed = await licensing.flow.client.post(
        f"/v1/licences/{old['number']}/renew", headers=licensing.flow.applicant
    )

    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["valid_until"] > old["valid_until"]
    assert renewed.json()["number"] == old["number"]
    assert (await licensing.verify(payload=old["qr_payload"]))["reason"].startswith("superseded")
    assert (await licensing.verify(payload=renewed.json()["qr_payload"]))["valid"] is True


async def test_an_expired_licence_verifies_expired_and_the_expiry_is_evented_once(
    licensing: Licensing, new_application: Callable[..., dict[str, Any]], sql: Any
) -> None:
    uscc = await licensing.business(new_application(business_scope=FOOD_SCOPE))
    licence = await licensing.licensed(uscc)
    await sql(
        "UPDATE accreditation_licences SET valid_until = '2020-01-01' WHERE number = :n",
        n=licence["number"],
    )

    first = await licensing.verify(payload=licence["qr_payload"])
    second = await licensing.verify(number=licence["number"])
    renewal = await licensing.flow.client.post(
        f"/v1/licences/{licence['number']}/renew", headers=licensing.flow.applicant
    )

    assert (first["valid"], first["status"]) == (True, "expired")
    assert second["status"] == "expired"
    assert renewal.status_code == 409
    expired = await sql(
        "SELECT count(*) FROM tongban_outbox WHERE event_type LIKE '%licence.expired.v1'"
    )
    assert expired == [(1,)]


async def test_deregistering_the_business_revokes_its_licences(
    licensing: Licensing, new_application: Callable[..., dict[str, Any]]
) -> None:
    flow = licensing.flow
    uscc = await licensing.business(new_application(business_scope=FOOD_SCOPE))
    licence = await licensing.licensed(uscc)

    asked = await flow.client.post(
        f"/v1/businesses/{uscc}/deregistration",
        json={"reason": "经营期满"},
        headers=flow.applicant,
    )
    done = await flow.client.post(
        f"/v1/review/businesses/{uscc}/deregistration/complete", headers=flow.officer
    )
    verified = await licensing.verify(number=licence["number"])

    assert (asked.status_code, done.status_code) == (200, 200), done.text
    assert verified["status"] == "revoked"


async def test_another_persons_business_licence_and_application_are_404(
    licensing: Licensing, new_application: Callable[..., dict[str, Any]]
) -> None:
    uscc = await licensing.business(new_application(business_scope=FOOD_SCOPE))
    applied = await licensing.apply(uscc, "food-operation")
    decided = await licensing.decide(applied.json()["id"], decision="approve")
    stranger_token = await mint_token(
        licensing.node.identity, subject="6b1f7a52-0d7e-4a8e-9f00-00000000beef", acr="high"
    )
    stranger = {"Authorization": f"Bearer {stranger_token}"}
    client = licensing.flow.client

    applies = await licensing.apply(uscc, "small-catering", **stranger)
    reads = await client.get(f"/v1/licence-applications/{applied.json()['id']}", headers=stranger)
    licence = await client.get(f"/v1/licences/{decided.json()['licence_number']}", headers=stranger)
    officer_only = await client.get("/v1/licensing/applications", headers=stranger)

    assert (applies.status_code, reads.status_code, licence.status_code) == (404, 404, 404)
    assert officer_only.status_code == 403


async def test_idempotent_apply_and_decide_replay_and_create_nothing_twice(
    licensing: Licensing, new_application: Callable[..., dict[str, Any]], sql: Any
) -> None:
    uscc = await licensing.business(new_application(business_scope=FOOD_SCOPE))
    key = {"Idempotency-Key": "licence-apply-1"}

    first = await licensing.apply(uscc, "food-operation", **key)
    replay = await licensing.apply(uscc, "food-operation", **key)
    decide = f"/v1/licensing/applications/{first.json()['id']}/decision"
    headers = {**licensing.flow.officer, "Idempotency-Key": "licence-decide-1"}
    approved = await licensing.flow.client.post(
        decide, json={"decision": "approve"}, headers=headers
    )
    approved_again = await licensing.flow.client.post(
        decide, json={"decision": "approve"}, headers=headers
    )

    assert first.status_code == replay.status_code == 201
    assert first.json() == replay.json()
    assert approved.status_code == approved_again.status_code == 200
    assert approved.json() == approved_again.json()
    assert await sql("SELECT count(*) FROM licence_applications") == [(1,)]
    assert await sql("SELECT count(*) FROM accreditation_licences") == [(1,)]


async def test_licence_events_reach_the_broker_valid_against_their_schemas(
    node: Any,
    database: str,
    tmp_path: Path,
    new_application: Callable[..., dict[str, Any]],
    sql: Any,
) -> None:
    settings = await _settings(node, database, tmp_path)
    person = await mint_token(
        node.identity, subject="6b1f7a52-0d7e-4a8e-9f00-000000000003", acr="substantial"
    )
    officer = await mint_token(
        node.identity, "registration:review", "registration:licensing", subject="o-8", acr="high"
    )
    async with (
        EventProbe(node.settings, "registration.events") as probe,
        running_app(create_app(settings)) as client,
    ):
        flow = Flow(
            client, {"Authorization": f"Bearer {person}"}, {"Authorization": f"Bearer {officer}"}
        )
        licensing = Licensing(flow, node, settings)
        uscc = await licensing.business(new_application(business_scope=FOOD_SCOPE))
        number = (await licensing.licensed(uscc))["number"]
        await flow.client.post(f"/v1/licences/{number}/renew", headers=flow.applicant)
        await licensing.act(number, "suspend")
        await licensing.act(number, "reinstate")
        await licensing.act(number, "revoke")
        verbs = ["issued", "renewed", "suspended", "reinstated", "revoked"]
        events = await probe.collect(
            lambda seen: len([e for e in seen if e.subject == number]) >= len(verbs)
        )

    mine = [e for e in events if e.subject == number]
    assert [e.type.rsplit(".", 2)[1] for e in mine] == verbs
    for event in mine:
        assert_valid_event(event)
