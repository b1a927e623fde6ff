"""Recording security events: one audit row and one outbox event, in the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.audit import repository
from tongban_identity.audit.models import AuditEvent
from tongban_kit.events import CloudEvent
from tongban_kit.outbox import add_event

#: What the log records; each is also the event type ``gov.tongban.identity.security.<t>.v1``,
#: with its schema in the kit's catalogue.
AuditType = Literal[
    "signed_up",
    "login_succeeded",
    "login_failed",
    "refresh_reused",
    "totp_enabled",
    "logged_out",
    "acted_for_business",
    "scopes_granted",
    "scopes_revoked",
]
#: Actors: the subject acting for themself, whoever it was that held a password or token, or
#: (officer scopes) ``operator:<sub>`` and ``command-line``.
SELF = "self"
ANONYMOUS = "anonymous"


def event_type(audit_type: AuditType) -> str:
    return f"gov.tongban.identity.security.{audit_type}.v1"


async def record(
    session: AsyncSession,
    *,
    type: AuditType,
    node: str,
    subject: uuid.UUID | None,
    actor: str = ANONYMOUS,
    ip: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit row and publish it as an event, both in ``session``'s transaction.

    ``subject`` is the person concerned (None when no account matched); ``actor`` who acted:
    ``self`` (the subject, signed in) or ``anonymous`` (whoever held a password or token).
    ``detail`` must never carry a resident ID, a password, a one-time code or a token. The
    client address is kept in the table only: the event leaves it out (personal data).
    """
    entry = await repository.append(
        session,
        AuditEvent(
            id=uuid.uuid4(),
            at=datetime.now(UTC),
            type=type,
            subject=subject,
            actor=actor,
            ip=ip,
            detail=dict(detail or {}),
        ),
    )
    await add_event(
        session,
        CloudEvent.new(
            event_type(type),
            source=f"/nodes/{node}/identity",
            # The Kafka key: one person's security events stay in order.
            subject=str(subject) if subject else str(entry.id),
            data={
                "audit_id": str(entry.id),
                "at": entry.at.isoformat(),
                "node": node,
                "person_id": str(subject) if subject else None,
                "actor": actor,
                "detail": entry.detail,
            },
        ),
    )
    return entry
