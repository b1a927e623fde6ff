"""All SQL on ``department_clients`` and ``client_assertion_jtis`` (``consume_assertion`` also
reads the active signing key's kid, to save the token endpoint a round trip)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, String, any_, bindparam, literal_column, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.departments.models import DepartmentClient


class CodeTaken(Exception):
    """An enabled client already exists for this department code."""


async def add(session: AsyncSession, client: DepartmentClient) -> DepartmentClient:
    """Insert; the partial unique index decides between concurrent enrolments of one code."""
    try:
        async with session.begin_nested():
            session.add(client)
            await session.flush()
    except IntegrityError as exc:
        if "uq_department_clients_code_enabled" in str(exc.orig):
            raise CodeTaken from exc
        raise
    await session.refresh(client)
    return client


async def get(session: AsyncSession, client_id: str) -> DepartmentClient | None:
    return await session.get(DepartmentClient, client_id)


async def list_clients(
    session: AsyncSession, *, include_disabled: bool
) -> Sequence[DepartmentClient]:
    query = select(DepartmentClient).order_by(DepartmentClient.code, DepartmentClient.created_at)
    if not include_disabled:
        query = query.where(DepartmentClient.disabled_at.is_(None))
    return (await session.scalars(query)).all()


async def disable(session: AsyncSession, client_id: str, *, at: datetime) -> None:
    """Disable once; disabling again keeps the first time."""
    await session.execute(
        update(DepartmentClient)
        .where(DepartmentClient.client_id == client_id, DepartmentClient.disabled_at.is_(None))
        .values(disabled_at=at)
    )


async def codes_known(session: AsyncSession, codes: Collection[str]) -> set[str]:
    """Which of ``codes`` any client, enabled or not, was ever enrolled for: one statement
    for any number of codes (one array parameter, so its text never changes)."""
    named = bindparam("codes", list(codes), type_=ARRAY(String))
    found = await session.scalars(
        select(DepartmentClient.code).distinct().where(DepartmentClient.code == any_(named))
    )
    return set(found)


@dataclass(frozen=True)
class VersionedClient:
    """A client row and its version (``xmin``: changes with every update of the row)."""

    client_id: str
    code: str
    name: str
    scopes: list[str]
    jwks: dict[str, Any]
    disabled_at: datetime | None
    version: str


_VERSION = literal_column("department_clients.xmin::text").label("version")


async def get_versioned(session: AsyncSession, client_id: str) -> VersionedClient | None:
    row = (
        await session.execute(
            select(
                DepartmentClient.client_id,
                DepartmentClient.code,
                DepartmentClient.name,
                DepartmentClient.scopes,
                DepartmentClient.jwks,
                DepartmentClient.disabled_at,
                _VERSION,
            ).where(DepartmentClient.client_id == client_id)
        )
    ).first()
    return None if row is None else VersionedClient(*row)


@dataclass(frozen=True)
class Consumed:
    """What ``consume_assertion`` found: the client row's version now (None: no such row),
    whether the assertion was recorded, and the kid of the key that signs now."""

    version: str | None
    recorded: bool
    active_kid: str | None


# One statement (one round trip, atomic in autocommit): the client's version now; the jti
# recorded only if that version is the one the caller checked the assertion with (the primary
# key refuses a replay, also a racing one: the later insert waits for the earlier and then
# does nothing); this client's expired jtis forgotten; the active signing key's kid.
_CONSUME = text(
    """
    WITH client AS (
        SELECT xmin::text AS version FROM department_clients WHERE client_id = :client_id
    ), recorded AS (
        INSERT INTO client_assertion_jtis (client_id, jti, expires_at)
        SELECT :client_id, :jti, :expires_at FROM client WHERE version = :version
        ON CONFLICT (client_id, jti) DO NOTHING
        RETURNING jti
    ), forgotten AS (
        DELETE FROM client_assertion_jtis
        WHERE client_id = :client_id AND expires_at < :forget_before
          AND EXISTS (SELECT FROM client WHERE version = :version)
    )
    SELECT (SELECT version FROM client),
           EXISTS (SELECT FROM recorded),
           (SELECT kid FROM signing_keys WHERE state = 'active')
    """
)


async def consume_assertion(
    session: AsyncSession,
    *,
    client_id: str,
    version: str,
    jti: str,
    expires_at: datetime,
    forget_before: datetime,
) -> Consumed:
    """Record a used assertion of the client at ``version`` (see ``_CONSUME``); reads the
    signing-key table too, so the token can be signed without another round trip."""
    row = (
        await session.execute(
            _CONSUME,
            {
                "client_id": client_id,
                "version": version,
                "jti": jti,
                "expires_at": expires_at,
                "forget_before": forget_before,
            },
        )
    ).one()
    return Consumed(version=row[0], recorded=bool(row[1]), active_kid=row[2])
