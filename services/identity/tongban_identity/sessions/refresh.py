"""Refresh tokens: rotation within a family, reuse detection, revocation.

Every refresh token is spent by its first use, which returns a new access token and a new
refresh token in the same family. A spent token presented again within the grace window (a
client retrying after a lost response) gets another new pair; presented later, it means two
parties hold the family's tokens, one of them a thief, and the whole family is revoked, the
newest token too (RFC 9700 §4.14.2). Rotations and revocations of one family take the family
row's lock, so a revocation cannot miss a token rotated at the same moment.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.audit import service as audit
from tongban_identity.departments.errors import InvalidGrant, InvalidScope
from tongban_identity.sessions import issuing, repository
from tongban_identity.sessions.issuing import TokenPolicy, hash_token
from tongban_identity.sessions.models import RefreshFamily, RefreshToken
from tongban_identity.sessions.schemas import TokenResponse
from tongban_kit.errors import Forbidden


class RefreshTokenReused(InvalidGrant):
    """The token was spent long enough ago to be a replay: its family is now revoked."""

    def __init__(self) -> None:
        super().__init__(
            "the refresh token was already used; the sign-in it belongs to has been ended for "
            "safety: sign in again"
        )


@dataclass(frozen=True)
class _Found:
    family: RefreshFamily
    token: RefreshToken


async def _find_locked(session: AsyncSession, refresh_token: str) -> _Found | None:
    token_hash = hash_token(refresh_token)
    family_id = await repository.family_id_of(session, token_hash)
    if family_id is None:
        return None
    family = await repository.lock_family(session, family_id)
    # Read after the lock: a rotation that held it before us is visible now.
    token = await repository.get_token(session, token_hash)
    if family is None or token is None:
        return None
    return _Found(family, token)


async def rotate(
    session: AsyncSession,
    policy: TokenPolicy,
    *,
    refresh_token: str,
    scope: str | None,
    ip: str | None,
    now: datetime,
) -> TokenResponse:
    """Spend ``refresh_token`` for a new pair in its family (``scope`` may narrow the access
    token). Raises ``InvalidGrant`` for an unknown, revoked or expired token, and
    ``RefreshTokenReused`` after revoking the family for a replay; the caller must commit what
    was written before that error (the revocation and its audit event)."""
    found = await _find_locked(session, refresh_token)
    if found is None:
        raise InvalidGrant("the refresh token is not valid")
    family, token = found.family, found.token
    if family.revoked_at is not None or token.revoked_at is not None:
        raise InvalidGrant("the refresh token has been revoked: sign in again")
    if token.used_at is not None and now - token.used_at > policy.reuse_grace:
        revoked = await repository.revoke_family(session, family.id, at=now, reason="reuse")
        await audit.record(
            session,
            type="refresh_reused",
            node=policy.node,
            subject=family.person_id,
            ip=ip,
            detail={
                "family_id": str(family.id),
                "token_id": str(token.id),
                "used_at": token.used_at.isoformat(),
                "tokens_revoked": revoked,
            },
        )
        raise RefreshTokenReused()
    if token.expires_at <= now or family.expires_at <= now:
        raise InvalidGrant("the refresh token has expired: sign in again")
    granted = _narrowed(await issuing.session_scope(session, family), scope)
    person = await repository.get_person(session, family.person_id)
    if person is None:  # deleted meanwhile (the cascade removes the family with it)
        raise InvalidGrant("the refresh token is not valid")
    if token.used_at is None:
        await repository.mark_used(session, token.id, at=now)
    return await issuing.issue_pair(
        session, policy, person=person, family=family, now=now, parent_id=token.id, scope=granted
    )


def _narrowed(family_scope: str, requested: str | None) -> str:
    if requested is None:
        return family_scope
    wanted = list(dict.fromkeys(requested.split()))
    if not wanted or not set(wanted) <= set(family_scope.split()):
        raise InvalidScope("the requested scope is not within the scope of the sign-in")
    return " ".join(wanted)


async def revoke(
    session: AsyncSession,
    policy: TokenPolicy,
    *,
    refresh_token: str,
    via: str,
    ip: str | None,
    now: datetime,
    person_id: uuid.UUID | None = None,
) -> bool:
    """End the sign-in ``refresh_token`` belongs to: revoke its family, every token in it.

    False if the token is unknown (not an error: RFC 7009 §2.2). With ``person_id`` (logout)
    the family must be that person's. Revoking a revoked family changes nothing.
    """
    found = await _find_locked(session, refresh_token)
    if found is None:
        return False
    family = found.family
    if person_id is not None and family.person_id != person_id:
        raise Forbidden("this refresh token belongs to another person's sign-in")
    if family.revoked_at is not None:
        return True
    revoked = await repository.revoke_family(session, family.id, at=now, reason=via)
    await audit.record(
        session,
        type="logged_out",
        node=policy.node,
        subject=family.person_id,
        actor=audit.SELF if person_id else audit.ANONYMOUS,
        ip=ip,
        detail={"family_id": str(family.id), "via": via, "tokens_revoked": revoked},
    )
    return True
