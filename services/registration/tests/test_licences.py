"""Registration as identity's client (a real identity on a real port, registration enrolled
with a key of its own): the electronic business licence, signed by the node and verified
offline with another JOSE library; applicants' signatures of their submissions, checked."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet

from tongban_identity.signatures.testing import mint_token, sign_detached
from tongban_kit.testing import running_app
from tongban_registration.main import create_app
from tongban_registration.settings import RegistrationSettings
from tongban_registration.testing import Flow


@pytest.fixture
async def licensed(node: Any, database: str, tmp_path: Path) -> AsyncIterator[tuple[Flow, Any]]:
    client_id = await node.enrol_registration(tmp_path / "registration.pem")
    settings = RegistrationSettings(
        database_url=database,
        node=node.settings,
        run_workers=False,
        client_id=client_id,
        client_key_file=tmp_path / "registration.pem",
    )
    person = await mint_token(
        node.identity, subject="6b1f7a52-0d7e-4a8e-9f00-000000000001", acr="substantial"
    )
    officer = await mint_token(
        node.identity, "registration:review", subject="officer-9", acr="high"
    )
    async with running_app(create_app(settings)) as client:
        flow = Flow(
            client,
            {"Authorization": f"Bearer {person}"},
            {"Authorization": f"Bearer {officer}"},
        )
        yield flow, node


def _offline_verify(payload: str, document_jwks: dict[str, Any]) -> dict[str, Any]:
    """What a phone does with the QR text: no call to the node, only its published keys."""
    encoded, _, compact = payload.partition("~")
    raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    verified = jws.deserialize_compact(compact, KeySet.import_key_set(document_jwks))
    assert verified.headers()["b64"] is False
    if verified.payload.decode() != hashlib.sha256(raw).hexdigest():
        raise ValueError("the document does not match the signed digest")
    return dict(json.loads(raw))


async def test_the_licence_verifies_offline_and_a_tampered_one_fails(
    licensed: tuple[Flow, Any], new_application: Callable[..., dict[str, Any]]
) -> None:
    flow, node = licensed
    approved = await flow.approved(new_application(name="深圳市电子执照科技有限公司"))
    uscc = approved["uscc"]
    licence = (await flow.client.get(f"/v1/businesses/{uscc}/licence")).json()
    async with httpx.AsyncClient() as phone:
        document_jwks = (
            await phone.get(f"{node.identity_url}/.well-known/document-jwks.json")
        ).json()

    document = _offline_verify(licence["qr_payload"], document_jwks)
    assert (document["uscc"], document["name"]) == (uscc, "深圳市电子执照科技有限公司")
    assert document["legal_representative"] == "张*"
    assert licence["document"] == document

    forged = dict(document, name="深圳市冒名顶替有限公司")
    forged_b64 = (
        base64.urlsafe_b64encode(
            json.dumps(forged, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        )
        .rstrip(b"=")
        .decode()
    )
    tampered = forged_b64 + "~" + licence["qr_payload"].partition("~")[2]
    with pytest.raises(ValueError, match="does not match"):
        _offline_verify(tampered, document_jwks)
    header, digest, signature = licence["qr_payload"].partition("~")[2].split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    with pytest.raises(BadSignatureError):
        _offline_verify(
            f"{licence['qr_payload'].partition('~')[0]}~{header}.{digest}.{flipped}", document_jwks
        )

    genuine = await flow.client.get(
        "/v1/licences/verify", params={"payload": licence["qr_payload"]}
    )
    altered = await flow.client.get("/v1/licences/verify", params={"payload": tampered})
    garbage = await flow.client.get("/v1/licences/verify", params={"payload": "not-a-licence"})
    assert genuine.json()["valid"] is True
    assert genuine.json()["status"] == "active"
    assert altered.json() == {
        **altered.json(),
        "valid": False,
        "reason": "the licence document was altered",
    }
    assert garbage.status_code == 200
    assert garbage.json()["valid"] is False


async def test_a_revoked_business_shows_revoked_at_verification_at_once(
    licensed: tuple[Flow, Any], new_application: Callable[..., dict[str, Any]]
) -> None:
    flow, _ = licensed
    uscc = (await flow.approved(new_application()))["uscc"]
    payload = (await flow.client.get(f"/v1/businesses/{uscc}/licence")).json()["qr_payload"]

    revoked = await flow.client.post(
        f"/v1/review/businesses/{uscc}/revoke",
        json={"reason": "以欺诈手段取得登记"},
        headers=flow.officer,
    )
    by_payload = (await flow.client.get("/v1/licences/verify", params={"payload": payload})).json()
    by_uscc = (await flow.client.get("/v1/licences/verify", params={"uscc": uscc})).json()

    assert revoked.status_code == 200
    assert (by_payload["valid"], by_payload["status"]) == (True, "revoked")
    assert by_uscc["status"] == "revoked"


async def test_without_a_service_account_approval_works_and_the_licence_waits(
    flow: Flow, new_application: Callable[..., dict[str, Any]]
) -> None:
    uscc = (await flow.approved(new_application()))["uscc"]

    licence = await flow.client.get(f"/v1/businesses/{uscc}/licence")

    assert licence.status_code == 503
    assert licence.headers["content-type"] == "application/problem+json"


async def test_a_signed_submission_is_checked_with_identity_and_a_wrong_signature_refused(
    licensed: tuple[Flow, Any], new_application: Callable[..., dict[str, Any]]
) -> None:
    flow, node = licensed
    flow.applicant, key, kid = await node.person_with_key()
    draft = await flow.draft(new_application())
    submit = f"/v1/applications/{draft['id']}/submit"

    wrong = await flow.client.post(
        submit,
        json={"signature": sign_detached(key, "0" * 64, kid=kid)},
        headers=flow.applicant,
    )
    signed = await flow.client.post(
        submit,
        json={"signature": sign_detached(key, draft["document_sha256"], kid=kid)},
        headers=flow.applicant,
    )

    assert wrong.status_code == 400, wrong.text
    assert wrong.headers["content-type"] == "application/problem+json"
    assert signed.status_code == 200, signed.text
    assert signed.json()["signature_kid"] == kid
    assert signed.json()["document_sha256"] == draft["document_sha256"]


async def test_a_change_reissues_the_licence_and_the_old_one_reads_superseded(
    licensed: tuple[Flow, Any], new_application: Callable[..., dict[str, Any]]
) -> None:
    flow, _ = licensed
    uscc = (await flow.approved(new_application()))["uscc"]
    old = (await flow.client.get(f"/v1/businesses/{uscc}/licence")).json()
    filed = await flow.client.post(
        f"/v1/businesses/{uscc}/changes",
        json={"name": "深圳市换证更名科技有限公司"},
        headers=flow.applicant,
    )
    approved = await flow.client.post(
        f"/v1/review/changes/{filed.json()['id']}/decision",
        json={"decision": "approve"},
        headers=flow.officer,
    )

    new = (await flow.client.get(f"/v1/businesses/{uscc}/licence")).json()
    old_verified = await flow.client.get(
        "/v1/licences/verify", params={"payload": old["qr_payload"]}
    )
    new_verified = await flow.client.get(
        "/v1/licences/verify", params={"payload": new["qr_payload"]}
    )

    assert approved.status_code == 200, approved.text
    assert new["document"]["name"] == "深圳市换证更名科技有限公司"
    assert old_verified.json()["valid"] is False
    assert old_verified.json()["reason"].startswith("superseded")
    assert new_verified.json()["valid"] is True
