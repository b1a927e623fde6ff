"""Officer scopes: operators grant a person extra scopes (roles) on this node.

A market-regulation officer gets ``registration:review``, an officer who confirms identities
``identity:assurance``. Sign-in tokens carry the person's granted scopes beside the node's
``login_scope``; they are read afresh at every login and refresh, so a revocation takes effect
at the sign-in's next refresh (access tokens already issued keep theirs until they expire,
minutes). Operator scopes (``tongban:*``) are never granted this way: operators are not persons
signed in with a password. Every change is audited (``scopes_granted``, ``scopes_revoked``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.audit import service as audit
from tongban_identity.persons import repository as persons_repository
from tongban_identity.persons.models import PersonScope
from tongban_kit.errors import NotFound

#: Who changed the scopes when it was done at the command line.
COMMAND_LINE = "command-line"


async def granted(session: AsyncSession, person_id: uuid.UUID) -> list[str]:
    """The person's granted scopes, sorted."""
    rows = await session.scalars(
        select(PersonScope.scope)
        .where(PersonScope.person_id == person_id)
        .order_by(PersonScope.scope)
    )
    return list(rows)


async def existing_person(session: AsyncSession, person_id: uuid.UUID) -> None:
    if await persons_repository.get(session, person_id) is None:
        raise NotFound(f"no person {person_id}")


async def grant(
    session: AsyncSession, *, person_id: uuid.UUID, scopes: Sequence[str], by: str, node: str
) -> list[str]:
    """Grant ``scopes`` (validated by the caller); already held ones change nothing. Returns
    the person's scopes now. Audited when anything was granted."""
    await existing_person(session, person_id)
    now = datetime.now(UTC)
    result = await session.execute(
        insert(PersonScope)
        .values(
            [
                {"person_id": person_id, "scope": s, "granted_at": now, "granted_by": by}
                for s in scopes
            ]
        )
        .on_conflict_do_nothing(index_elements=["person_id", "scope"])
        .returning(PersonScope.scope)
    )
    added = sorted(result.scalars())
    if added:
        await audit.record(
            session,
            type="scopes_granted",
            node=node,
            subject=person_id,
            actor=by,
            detail={"scopes": added},
        )
    return await granted(session, person_id)


async def revoke(
    session: AsyncSession, *, person_id: uuid.UUID, scopes: Sequence[str], by: str, node: str
) -> list[str]:
    """Revoke ``scopes``; ones not held change nothing. Returns the person's scopes now.
    Audited when anything was revoked; effective at the sign-in's next refresh."""
    await existing_person(session, person_id)
    result = await session.execute(
        delete(PersonScope)
        .where(PersonScope.person_id == person_id, PersonScope.scope.in_(list(scopes)))
        .returning(PersonScope.scope)
    )
    removed = sorted(result.scalars())
    if removed:
        await audit.record(
            session,
            type="scopes_revoked",
            node=node,
            subject=person_id,
            actor=by,
            detail={"scopes": removed},
        )
    return await granted(session, person_id)
