"""A signed submission stays verifiable: its exact bytes and signature are kept, the
applicant and officers fetch them and identity checks the signature again; anyone verifies
it offline with another JOSE library (joserfc) and the applicant's public key."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.jwk import KeySet

from tongban_identity.signatures.testing import mint_token, public_jwk, sign_detached
from tongban_kit.testing import running_app
from tongban_registration.main import create_app
from tongban_registration.settings import RegistrationSettings
from tongban_registration.testing import Flow

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 2000


async def test_a_signed_submission_is_kept_rechecked_and_verifies_offline(
    node: Any, database: str, tmp_path: Path, new_application: Callable[..., dict[str, Any]]
) -> None:
    client_id = await node.enrol_registration(tmp_path / "registration.pem")
    settings = RegistrationSettings(
        database_url=database,
        node=node.settings,
        run_workers=False,
        client_id=client_id,
        client_key_file=tmp_path / "registration.pem",
    )
    applicant, key, kid = await node.person_with_key()
    officer = await mint_token(node.identity, "registration:review", subject="o-3", acr="high")
    stranger = await mint_token(
        node.identity, subject="6b1f7a52-0d7e-4a8e-9f00-0000000000aa", acr="substantial"
    )
    async with running_app(create_app(settings)) as client:
        flow = Flow(client, applicant, {"Authorization": f"Bearer {officer}"})
        draft = await flow.draft(new_application())
        uploaded = await client.post(
            f"/v1/applications/{draft['id']}/documents",
            params={"filename": "场地.png"},
            content=PNG,
            headers=applicant,
        )
        to_sign = (await client.get(f"/v1/applications/{draft['id']}", headers=applicant)).json()
        signature = sign_detached(key, to_sign["document_sha256"], kid=kid)
        submitted = await client.post(
            f"/v1/applications/{draft['id']}/submit",
            json={"signature": signature},
            headers=applicant,
        )
        path = f"/v1/applications/{draft['id']}/submission"
        by_applicant = await client.get(path, headers=applicant)
        by_officer = await client.get(path, headers=flow.officer)
        by_stranger = await client.get(path, headers={"Authorization": f"Bearer {stranger}"})

    assert submitted.status_code == 200, submitted.text
    kept = by_applicant.json()
    assert by_applicant.status_code == 200, by_applicant.text
    assert kept["verification"] == {"checked": True, "valid": True, "kid": kid, "reason": None}
    assert by_officer.json() == kept
    assert by_stranger.status_code == 404

    # Offline, with joserfc and the applicant's public key only.
    document = base64.b64decode(kept["document"])
    sha256 = hashlib.sha256(document).hexdigest()
    header, _, sig = kept["signature"].split(".")
    keys = KeySet.import_key_set({"keys": [{**public_jwk(key), "kid": kid}]})
    verified = jws.deserialize_compact(f"{header}.{sha256}.{sig}", keys)
    content = json.loads(document)
    assert verified.payload.decode() == sha256 == kept["document_sha256"]
    assert content["documents"][0]["sha256"] == uploaded.json()["sha256"]
    assert content["documents"][0]["sha256"] == hashlib.sha256(PNG).hexdigest()
    tampered = document.replace("张三".encode(), "李四".encode())
    assert hashlib.sha256(tampered).hexdigest() != verified.payload.decode()


async def test_an_unsigned_submission_is_kept_without_a_verification(
    flow: Flow, new_application: Callable[..., dict[str, Any]]
) -> None:
    draft = await flow.draft(new_application())
    before = await flow.client.get(
        f"/v1/applications/{draft['id']}/submission", headers=flow.applicant
    )
    submitted = await flow.submit(draft["id"])

    kept = await flow.client.get(
        f"/v1/applications/{draft['id']}/submission", headers=flow.applicant
    )

    assert before.status_code == 404
    assert kept.status_code == 200
    assert kept.json()["verification"] is None
    document = base64.b64decode(kept.json()["document"])
    assert hashlib.sha256(document).hexdigest() == submitted["document_sha256"]
