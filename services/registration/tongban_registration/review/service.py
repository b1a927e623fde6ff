"""The officer's side: the queue, claiming, deciding; and instant approval without an officer."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_kit.crypto import FieldCipher
from tongban_kit.errors import Forbidden, NotFound
from tongban_registration import events
from tongban_registration.applications import repository
from tongban_registration.applications.service import record_transition
from tongban_registration.applications.states import PENDING, Action, Status, move
from tongban_registration.businesses import service as businesses
from tongban_registration.identity_client import IdentityClient
from tongban_registration.licences import service as licences
from tongban_registration.models import Application
from tongban_registration.review import rules
from tongban_registration.review.clock import office_date
from tongban_registration.settings import RegistrationSettings

#: The actor recorded for instant approvals.
AUTO_APPROVER = "system:instant-approval"


async def _application(session: AsyncSession, application_id: uuid.UUID) -> Application:
    application = await repository.get(session, application_id, for_update=True)
    if application is None or application.status == Status.DRAFT:
        # A draft is the applicant's own business; officers see only what was submitted.
        raise NotFound(f"no application {application_id}")
    return application


async def queue(session: AsyncSession) -> Sequence[Application]:
    return await repository.queue(session, PENDING)


async def overdue(session: AsyncSession) -> Sequence[Application]:
    return await repository.queue(session, PENDING, overdue_on=office_date(datetime.now(UTC)))


async def count_overdue(session: AsyncSession) -> int:
    return await repository.count_overdue(session, office_date(datetime.now(UTC)))


async def get(session: AsyncSession, *, application_id: uuid.UUID) -> Application:
    return await _application(session, application_id)


async def claim(session: AsyncSession, *, application_id: uuid.UUID, officer: str) -> Application:
    application = await _application(session, application_id)
    status = Status(application.status)
    application.status = move(status, Action.CLAIM, officer=True).value
    application.reviewer = officer
    await record_transition(
        session, application, action=Action.CLAIM, before=status, actor=officer, role="officer"
    )
    return application


async def _approve(
    session: AsyncSession,
    application: Application,
    *,
    actor: str,
    role: str,
    settings: RegistrationSettings,
    cipher: FieldCipher,
    identity: IdentityClient | None,
) -> None:
    status = Status(application.status)
    application.status = move(status, Action.APPROVE, officer=True).value
    node = settings.node.node_code
    business = await businesses.register(session, application=application, node=node, cipher=cipher)
    await licences.try_issue(session, business=business, identity=identity, node=node)
    reservation = await repository.live_reservation(session, application.id)
    if reservation is not None:
        reservation.expires_at = None  # the registered name is held for good
    application.uscc = business.uscc
    application.decided_at = business.registered_at
    await record_transition(
        session, application, action=Action.APPROVE, before=status, actor=actor, role=role
    )
    await events.emit(
        session,
        events.APPLICATION_APPROVED,
        node=node,
        subject=str(application.id),
        data={
            "application_id": str(application.id),
            "business_id": str(business.id),
            "uscc": business.uscc,
            "name": application.name,
            "decided_at": business.registered_at.isoformat(),
            "instant": role == "system",
        },
    )


async def decide(
    session: AsyncSession,
    *,
    application_id: uuid.UUID,
    officer: str,
    decision: Action,
    reason: str | None,
    problems: list[dict[str, str]] | None,
    settings: RegistrationSettings,
    cipher: FieldCipher,
    identity: IdentityClient | None,
) -> Application:
    """Approve, reject (with a reason) or return (with every problem at once)."""
    application = await _application(session, application_id)
    status = Status(application.status)
    move(status, decision, officer=True)  # 409 before anything else when not under review
    if application.reviewer != officer:
        raise Forbidden("another officer claimed this application", reviewer_is_you=False)
    if decision is Action.APPROVE:
        await _approve(
            session,
            application,
            actor=officer,
            role="officer",
            settings=settings,
            cipher=cipher,
            identity=identity,
        )
        return application
    now = datetime.now(UTC)
    application.status = move(status, decision, officer=True).value
    application.decided_at = now
    node = settings.node.node_code
    data: dict[str, Any]
    if decision is Action.REJECT:
        await repository.release(session, application.id, now)
        event, data = events.APPLICATION_REJECTED, {"reason": reason}
    else:
        application.problems = problems
        event, data = events.APPLICATION_RETURNED, {"problems": problems}
    await record_transition(
        session,
        application,
        action=decision,
        before=status,
        actor=officer,
        role="officer",
        reason=reason,
        problems=problems,
    )
    await events.emit(
        session,
        event,
        node=node,
        subject=str(application.id),
        data={
            "application_id": str(application.id),
            "name": application.name,
            "decided_at": now.isoformat(),
            **data,
        },
    )
    return application


async def instant_approval(
    session: AsyncSession,
    *,
    application: Application,
    settings: RegistrationSettings,
    cipher: FieldCipher,
    identity: IdentityClient | None,
) -> bool:
    """Approve a just-submitted application at once when its entity type is configured for it
    and it meets every rule; otherwise leave it for an officer."""
    if application.entity_type not in settings.auto_approve_entity_types:
        return False
    if rules.problems_of(application):
        return False
    status = Status(application.status)
    application.status = move(status, Action.CLAIM, officer=True).value
    application.reviewer = AUTO_APPROVER
    await record_transition(
        session, application, action=Action.CLAIM, before=status, actor=AUTO_APPROVER, role="system"
    )
    await _approve(
        session,
        application,
        actor=AUTO_APPROVER,
        role="system",
        settings=settings,
        cipher=cipher,
        identity=identity,
    )
    return True
