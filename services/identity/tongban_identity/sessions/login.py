"""Login with resident ID number and password (and a TOTP code once enabled)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tongban_identity.audit import service as audit
from tongban_identity.persons.protection import PersonalData
from tongban_identity.sessions import issuing, repository, throttle
from tongban_identity.sessions.errors import LoginFailed, LoginThrottled, TotpRejected, TotpRequired
from tongban_identity.sessions.issuing import TokenPolicy
from tongban_identity.sessions.schemas import TokenResponse
from tongban_identity.sessions.totp import TOTP_CONTEXT
from tongban_identity.settings import IdentitySettings
from tongban_kit.crypto import PasswordHasher, verify_totp

FailureReason = Literal["unknown_account", "wrong_password", "totp_required", "totp_invalid"]


@dataclass(frozen=True)
class Credentials:
    resident_id: str  # canonical (validated) form
    password: str
    totp: str | None


@dataclass(frozen=True)
class LoginContext:
    """Everything a login needs from the app, gathered once per request."""

    sessionmaker: async_sessionmaker[AsyncSession]
    personal_data: PersonalData
    hasher: PasswordHasher
    policy: TokenPolicy
    account_backoff: throttle.Backoff
    address_backoff: throttle.Backoff
    scope: str
    ip: str | None

    @classmethod
    def of(cls, state: Any, *, ip: str | None) -> LoginContext:
        settings: IdentitySettings = state.settings
        return cls(
            sessionmaker=state.sessionmaker,
            personal_data=state.personal_data,
            hasher=state.password_hasher,
            policy=TokenPolicy.of(state),
            account_backoff=throttle.Backoff(
                settings.login_backoff_free_failures,
                settings.login_backoff_base_s,
                settings.login_backoff_max_s,
            ),
            address_backoff=throttle.Backoff(
                settings.login_backoff_address_free_failures,
                settings.login_backoff_base_s,
                settings.login_backoff_max_s,
            ),
            scope=settings.login_scope,
            ip=ip,
        )


async def login(
    session: AsyncSession, *, credentials: Credentials, context: LoginContext, now: datetime
) -> TokenResponse:
    """Check the credentials and start a sign-in: an access token and a new refresh family.

    Refused alike for an unknown account and a wrong password (``LoginFailed``, same body,
    the same argon2 work); ``LoginThrottled`` while the account or the address backs off.
    """
    index = context.personal_data.resident_id_index(credentials.resident_id)
    account = throttle.account_key(index)
    keys = {account: context.account_backoff}
    address = None
    if context.ip:
        address = (throttle.address_key(context.ip), context.address_backoff)
        keys[address[0]] = address[1]

    # The attempt is counted in a short transaction of its own, committed before the
    # password is checked: a failed login ends in an error, which rolls the request's
    # transaction back (SessionDep), and the count must survive that; committed first, it is
    # also seen by any concurrent guess at the same account. Success takes it back below, in
    # the request's transaction, together with the tokens it issues.
    async with context.sessionmaker() as own, own.begin():
        refused = await throttle.reserve(own, keys, now=now)
        found = None if refused else await repository.find_for_login(own, index)
    if refused:
        raise LoginThrottled(refused.retry_after_s)

    person, totp = found if found else (None, None)
    if person is None or person.password_hash is None:
        # The same argon2 work as a wrong password, so the time taken does not tell either.
        await asyncio.to_thread(context.hasher.dummy_verify, credentials.password)
        await _record_failure(context, person_id=None, reason="unknown_account")
        raise LoginFailed()
    password_hash = person.password_hash
    if not await asyncio.to_thread(context.hasher.verify, password_hash, credentials.password):
        await _record_failure(context, person_id=person.id, reason="wrong_password")
        raise LoginFailed()

    amr = ["pwd"]
    if totp is not None and totp.confirmed_at is not None:
        if not credentials.totp:
            await _record_failure(context, person_id=person.id, reason="totp_required")
            raise TotpRequired()
        secret = context.personal_data.unseal(totp.secret_sealed, context=TOTP_CONTEXT)
        step = verify_totp(
            secret, credentials.totp, now=now.timestamp(), last_used_step=totp.totp_last_step
        )
        # The claim is conditional in the database: of two logins racing with one code,
        # only one gets the step.
        if step is None or not await repository.claim_totp_step(session, person.id, step=step):
            await _record_failure(context, person_id=person.id, reason="totp_invalid")
            raise TotpRejected()
        amr.append("otp")

    await throttle.succeeded(session, account=account, address=address, now=now)
    if context.hasher.needs_rehash(password_hash):
        upgraded = await asyncio.to_thread(context.hasher.hash, credentials.password)
        await repository.replace_password_hash(session, person.id, old=password_hash, new=upgraded)
    policy = context.policy
    family = await issuing.start_family(
        session, policy, person_id=person.id, scope=context.scope, amr=amr, now=now
    )
    tokens = await issuing.issue_pair(session, policy, person=person, family=family, now=now)
    await audit.record(
        session,
        type="login_succeeded",
        node=policy.node,
        subject=person.id,
        actor=audit.SELF,
        ip=context.ip,
        detail={"family_id": str(family.id), "acr": issuing.acr_of(person), "amr": amr},
    )
    return tokens


async def _record_failure(
    context: LoginContext, *, person_id: uuid.UUID | None, reason: FailureReason
) -> None:
    # Like the attempt count: the request's transaction will roll back, so the audit row and
    # its event commit in a short transaction of their own.
    async with context.sessionmaker() as own, own.begin():
        await audit.record(
            own,
            type="login_failed",
            node=context.policy.node,
            subject=person_id,
            ip=context.ip,
            detail={"reason": reason},
        )
