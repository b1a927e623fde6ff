"""Acting for a business: the businesses a person may act for, and tokens that say so.

A person may act for a business when a current delegation names their resident ID's blind
index (``legal_persons.models.Delegation``). The token they get then carries ``business``
(the USCC) beside their own ``sub``, ``acr``, ``amr`` and ``auth_time``: services see a
``business`` principal and still know which person acts.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.audit import service as audit
from tongban_identity.legal_persons import repository
from tongban_identity.legal_persons.models import Delegation
from tongban_identity.models import LegalPerson, Person
from tongban_identity.persons import repository as persons_repository
from tongban_identity.sessions.issuing import TokenPolicy
from tongban_identity.tokens.service import issue_access_token
from tongban_kit.auth import AccessClaims
from tongban_kit.errors import Forbidden


@dataclass(frozen=True)
class ActingToken:
    access_token: str
    expires_in: int
    scope: str
    business: str


async def _signed_in_person(session: AsyncSession, caller: AccessClaims) -> Person:
    """The person a sign-in token is for: not a department's, a service's or an operator's."""
    if caller.acr is None or caller.auth_time is None:
        raise Forbidden("only a signed-in person can act for a business")
    try:
        person_id = uuid.UUID(caller.sub)
    except ValueError:
        raise Forbidden("only a signed-in person can act for a business") from None
    person = await persons_repository.get(session, person_id)
    if person is None:
        raise Forbidden("only a signed-in person can act for a business")
    return person


async def businesses_of(
    session: AsyncSession, caller: AccessClaims
) -> Sequence[tuple[Delegation, LegalPerson]]:
    """The current delegations of the signed-in person, with their businesses."""
    person = await _signed_in_person(session, caller)
    if person.resident_id_index is None:
        return []
    return await repository.current_delegations(session, person_index=person.resident_id_index)


async def act_as(
    session: AsyncSession,
    policy: TokenPolicy,
    *,
    caller: AccessClaims,
    sign_in: str | None,
    uscc: str,
    ip: str | None,
) -> ActingToken:
    """An access token for ``caller`` acting for ``uscc``; ``Forbidden`` (nothing written)
    unless a current delegation names them.

    The token keeps the caller's ``sub``, ``scope``, ``acr``, ``amr``, ``auth_time`` and
    ``sid`` (``sign_in``), and expires no later than the caller's token: acting for a business
    never outlives the sign-in's own tokens, so ending the sign-in ends it too at the next
    refresh. Audited as ``acted_for_business``.
    """
    person = await _signed_in_person(session, caller)
    found = (
        await repository.current_delegations(
            session, person_index=person.resident_id_index, uscc=uscc
        )
        if person.resident_id_index is not None
        else []
    )
    if not found:
        raise Forbidden("you are not recorded as able to act for this business")
    delegation, business = found[0]
    remaining = int((caller.exp - datetime.now(UTC)).total_seconds())
    lifetime = max(1, min(policy.access_ttl_s, remaining))
    assert caller.auth_time is not None  # checked by _signed_in_person
    extra = {"business": business.uscc} | ({"sid": sign_in} if sign_in else {})
    access_token = await issue_access_token(
        session,
        vault=policy.vault,
        issuer=policy.issuer,
        subject=caller.sub,
        audience=policy.audience,
        scope=caller.scope.split(),
        acr=caller.acr,
        amr=caller.amr,
        auth_time=caller.auth_time,
        node=policy.node,
        lifetime_s=lifetime,
        extra_claims=extra,
    )
    await audit.record(
        session,
        type="acted_for_business",
        node=policy.node,
        subject=person.id,
        actor=audit.SELF,
        ip=ip,
        detail={
            "uscc": business.uscc,
            "source": delegation.source,
            "delegation_id": str(delegation.id),
        },
    )
    return ActingToken(access_token, lifetime, caller.scope, business.uscc)
