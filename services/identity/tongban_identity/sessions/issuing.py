"""Issuing a token pair: an access token and a refresh token in a family."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.keys.sealing import KeyVault
from tongban_identity.models import Person
from tongban_identity.persons import scopes as person_scopes
from tongban_identity.sessions import repository
from tongban_identity.sessions.models import RefreshFamily, RefreshToken
from tongban_identity.sessions.schemas import TokenResponse
from tongban_identity.settings import IdentitySettings
from tongban_identity.tokens.service import issue_access_token
from tongban_kit.auth import ASSURANCE_LEVELS, AssuranceLevel


@dataclass(frozen=True)
class TokenPolicy:
    """How this node's tokens look and how long they live (from identity's settings)."""

    vault: KeyVault
    issuer: str
    audience: str
    node: str
    access_ttl_s: int
    refresh_ttl: timedelta
    session_max: timedelta
    reuse_grace: timedelta

    @classmethod
    def of(cls, state: Any) -> TokenPolicy:
        """From ``app.state`` (settings and the key vault built in the lifespan)."""
        settings: IdentitySettings = state.settings
        return cls(
            vault=state.key_vault,
            issuer=settings.issuer,
            audience=settings.token_audience,
            node=settings.node.node_code,
            access_ttl_s=settings.access_token_ttl_s,
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_s),
            session_max=timedelta(seconds=settings.session_max_s),
            reuse_grace=timedelta(seconds=settings.refresh_reuse_grace_s),
        )


def hash_token(token: str) -> str:
    """What is stored of a refresh token: its SHA-256, hex. 256 random bits need no salt."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def acr_of(person: Person) -> AssuranceLevel:
    return person.loa if person.loa in ASSURANCE_LEVELS else "low"


async def session_scope(session: AsyncSession, family: RefreshFamily) -> str:
    """What a sign-in's access tokens may hold: the scope it started with (``login_scope``) and
    the scopes granted to the person now, read afresh so a revocation counts at the next
    refresh."""
    granted = await person_scopes.granted(session, family.person_id)
    return " ".join(dict.fromkeys([*family.scope.split(), *granted]))


async def start_family(
    session: AsyncSession,
    policy: TokenPolicy,
    *,
    person_id: uuid.UUID,
    scope: str,
    amr: list[str],
    now: datetime,
) -> RefreshFamily:
    return await repository.add_family(
        session,
        RefreshFamily(
            id=uuid.uuid4(),
            person_id=person_id,
            scope=scope,
            amr=amr,
            auth_time=now,
            created_at=now,
            expires_at=now + policy.session_max,
        ),
    )


async def issue_pair(
    session: AsyncSession,
    policy: TokenPolicy,
    *,
    person: Person,
    family: RefreshFamily,
    now: datetime,
    parent_id: uuid.UUID | None = None,
    scope: str | None = None,
) -> TokenResponse:
    """A new access token and a new refresh token in ``family`` (child of ``parent_id``).

    ``scope`` narrows the access token (never the refresh token, RFC 6749 §6); by default it
    gets the whole ``session_scope``.
    """
    refresh_token = secrets.token_urlsafe(32)
    await repository.add_token(
        session,
        RefreshToken(
            id=uuid.uuid4(),
            family_id=family.id,
            person_id=person.id,
            token_hash=hash_token(refresh_token),
            parent_id=parent_id,
            issued_at=now,
            expires_at=min(now + policy.refresh_ttl, family.expires_at),
        ),
    )
    granted = scope if scope is not None else await session_scope(session, family)
    access_token = await issue_access_token(
        session,
        vault=policy.vault,
        issuer=policy.issuer,
        subject=str(person.id),
        audience=policy.audience,
        scope=granted.split(),
        acr=acr_of(person),
        amr=family.amr,
        auth_time=family.auth_time,
        node=policy.node,
        lifetime_s=policy.access_ttl_s,
        # The sign-in: introspection answers inactive once it is revoked (tokens.introspection).
        extra_claims={"sid": str(family.id)},
    )
    return TokenResponse(
        access_token=access_token,
        expires_in=policy.access_ttl_s,
        refresh_token=refresh_token,
        scope=granted,
    )
