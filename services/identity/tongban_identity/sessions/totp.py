"""Optional TOTP (RFC 6238) for a person: enrol, confirm with a first code, then required."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.audit import service as audit
from tongban_identity.persons.protection import PersonalData
from tongban_identity.sessions import repository
from tongban_identity.sessions.errors import TotpCodeMismatch
from tongban_identity.sessions.schemas import TotpEnrolment, TotpStatus
from tongban_kit.crypto import new_totp_secret, provisioning_uri, verify_totp
from tongban_kit.errors import Conflict, NotFound

#: Sealing context of TOTP secrets (a secret sealed for another field does not decrypt here).
TOTP_CONTEXT = "persons.totp"


async def enrol(
    session: AsyncSession,
    *,
    person_id: uuid.UUID,
    personal_data: PersonalData,
    node: str,
    now: datetime,
) -> TotpEnrolment:
    """A new secret, stored sealed and inactive until confirmed; replaces an unconfirmed one."""
    person = await repository.get_person(session, person_id)
    if person is None:
        raise NotFound("no such person")
    secret = new_totp_secret()
    stored = await repository.put_pending_totp(
        session,
        person_id,
        secret_sealed=personal_data.seal(secret, context=TOTP_CONTEXT),
        now=now,
    )
    if not stored:
        raise Conflict("TOTP is already enabled for this account")
    # What the authenticator app shows next to the codes: masked, never the full ID number.
    account = (person.resident_id_masked or person.name).replace(":", " ")
    return TotpEnrolment(
        secret=secret,
        provisioning_uri=provisioning_uri(secret, account=account, issuer=f"Tongban {node}"),
    )


async def confirm(
    session: AsyncSession,
    *,
    person_id: uuid.UUID,
    code: str,
    personal_data: PersonalData,
    node: str,
    ip: str | None,
    now: datetime,
) -> TotpStatus:
    """Activate the pending secret if ``code`` is current for it; from now on login needs one."""
    credential = await repository.get_totp(session, person_id, for_update=True)
    if credential is None:
        raise Conflict("no TOTP enrolment to confirm; start one with POST /v1/me/totp")
    if credential.confirmed_at is not None:
        raise Conflict("TOTP is already enabled for this account")
    secret = personal_data.unseal(credential.secret_sealed, context=TOTP_CONTEXT)
    step = verify_totp(secret, code, now=now.timestamp(), last_used_step=None)
    if step is None:
        raise TotpCodeMismatch()
    # The confirming code is spent too: it cannot be replayed to log in.
    await repository.confirm_totp(session, person_id, step=step, now=now)
    await audit.record(
        session,
        type="totp_enabled",
        node=node,
        subject=person_id,
        actor=audit.SELF,
        ip=ip,
    )
    return TotpStatus(enabled=True, confirmed_at=now)
