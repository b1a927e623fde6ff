"""Applying for an accreditation licence and deciding it; who may see and act on a licence.

The holder is the business: the person whose application registered it (its legal
representative, `owner`) or a person acting for it (a token with its USCC in `business`).
Anyone else is told the application or licence does not exist (404).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_kit.auth import AccessClaims
from tongban_kit.errors import BadRequest, Conflict, NotFound
from tongban_registration.businesses import repository as businesses
from tongban_registration.businesses.service import canonical_uscc
from tongban_registration.exchange_client import ExchangeClient
from tongban_registration.identity_client import IdentityClient
from tongban_registration.licensing import lifecycle, prerequisites, repository
from tongban_registration.licensing.types import LicenceType
from tongban_registration.models import AccreditationLicence, Business, LicenceApplication
from tongban_registration.review.clock import office_date
from tongban_registration.settings import RegistrationSettings

SUBMITTED, APPROVED, REJECTED = "submitted", "approved", "rejected"


def is_holder(caller: AccessClaims, business: Business) -> bool:
    if caller.business is not None:
        return caller.business == business.uscc
    return caller.sub == business.owner


def licence_type_of(
    settings: RegistrationSettings, code: str, *, in_path: bool = False
) -> LicenceType:
    """The node's licence type ``code``: an unknown one named in a path is a resource that
    does not exist (404), named in a body a bad field (400)."""
    licence_type = settings.licence_type(code)
    if licence_type is None and in_path:
        raise NotFound(f"this node issues no {code!r} licence")
    if licence_type is None:
        raise BadRequest(
            f"licence_type: this node issues no {code!r} licence", field="licence_type"
        )
    return licence_type


async def business_of_holder(
    session: AsyncSession, *, caller: AccessClaims, uscc: str, for_update: bool = False
) -> Business:
    business = await businesses.by_uscc(session, canonical_uscc(uscc), for_update=for_update)
    if business is None or not is_holder(caller, business):
        raise NotFound(f"no business with USCC {uscc} of yours")
    return business


def _refuse_unmet(unmet: list[dict[str, str]], licence_type: LicenceType) -> None:
    if unmet:
        raise Conflict(
            f"{len(unmet)} prerequisite(s) of a {licence_type.code} licence not met",
            unmet_prerequisites=unmet,
        )


async def apply(
    session: AsyncSession,
    *,
    caller: AccessClaims,
    uscc: str,
    type_code: str,
    settings: RegistrationSettings,
    identity: IdentityClient | None,
    exchange: ExchangeClient | None,
) -> tuple[LicenceApplication, AccreditationLicence | None]:
    """Apply for a licence; 409 listing every unmet prerequisite at once. Types configured
    for instant approval are issued here; others wait for an officer."""
    licence_type = licence_type_of(settings, type_code)
    business = await business_of_holder(session, caller=caller, uscc=uscc, for_update=True)
    unmet = await prerequisites.unmet(
        session, business=business, licence_type=licence_type, exchange=exchange
    )
    _refuse_unmet(unmet, licence_type)
    if licence_type.code in await repository.held_types(
        session, business.id, office_date(datetime.now(UTC))
    ):
        raise Conflict(
            f"the business already holds a {licence_type.code} licence; renew it instead",
            licence_type=licence_type.code,
        )
    application = LicenceApplication(
        id=uuid.uuid4(),
        business_id=business.id,
        uscc=business.uscc,
        licence_type=licence_type.code,
        applicant=caller.sub,
        status=SUBMITTED,
        created_at=datetime.now(UTC),
    )
    await repository.add_application(session, application)
    licence = None
    if licence_type.instant_approval:
        licence = await _approve(
            session,
            application=application,
            business=business,
            licence_type=licence_type,
            identity=identity,
            node=settings.node.node_code,
            actor="instant-approval",
        )
    return application, licence


async def _approve(
    session: AsyncSession,
    *,
    application: LicenceApplication,
    business: Business,
    licence_type: LicenceType,
    identity: IdentityClient | None,
    node: str,
    actor: str,
) -> AccreditationLicence:
    licence = await lifecycle.issue(
        session,
        application=application,
        business=business,
        licence_type=licence_type,
        identity=identity,
        node=node,
        actor=actor,
    )
    application.status, application.decided_by = APPROVED, actor
    application.decided_at, application.licence_number = datetime.now(UTC), licence.number
    return licence


async def mine(
    session: AsyncSession, *, applicant: str, application_id: uuid.UUID
) -> LicenceApplication:
    application = await repository.application(session, application_id)
    if application is None or application.applicant != applicant:
        raise NotFound(f"no licence application {application_id}")
    return application


async def of_applicant(session: AsyncSession, *, applicant: str) -> Sequence[LicenceApplication]:
    return await repository.applications_of(session, applicant)


async def pending(session: AsyncSession, *, limit: int) -> Sequence[LicenceApplication]:
    return await repository.applications_in(session, SUBMITTED, limit)


async def decide(
    session: AsyncSession,
    *,
    application_id: uuid.UUID,
    approve: bool,
    reason: str | None,
    officer: str,
    settings: RegistrationSettings,
    identity: IdentityClient | None,
    exchange: ExchangeClient | None,
) -> tuple[LicenceApplication, AccreditationLicence | None]:
    """An officer's decision. Approval re-checks the prerequisites (409 listing the unmet)."""
    application = await repository.application(session, application_id, for_update=True)
    if application is None:
        raise NotFound(f"no licence application {application_id}")
    if application.status != SUBMITTED:
        raise Conflict(
            f"the application is already {application.status}", current_status=application.status
        )
    if not approve:
        if not reason:
            raise BadRequest("reason: a rejection says why", field="reason")
        application.status, application.reason = REJECTED, reason
        application.decided_by, application.decided_at = officer, datetime.now(UTC)
        return application, None
    licence_type = licence_type_of(settings, application.licence_type)
    business = await businesses.by_uscc(session, application.uscc, for_update=True)
    assert business is not None  # a licence application names a registered business
    unmet = await prerequisites.unmet(
        session, business=business, licence_type=licence_type, exchange=exchange
    )
    _refuse_unmet(unmet, licence_type)
    application.reason = reason
    licence = await _approve(
        session,
        application=application,
        business=business,
        licence_type=licence_type,
        identity=identity,
        node=settings.node.node_code,
        actor=officer,
    )
    return application, licence


async def licence_for(
    session: AsyncSession,
    *,
    number: str,
    caller: AccessClaims | None,
    node: str,
    for_update: bool = False,
) -> AccreditationLicence:
    """The licence by number, expired first if its time is over; a ``caller`` that is given
    must be its holder (404 otherwise). ``None`` means an officer."""
    licence = await repository.by_number(session, number, for_update=for_update)
    if licence is not None and caller is not None:
        business = await businesses.by_uscc(session, licence.uscc)
        if business is None or not is_holder(caller, business):
            licence = None
    if licence is None:
        raise NotFound(f"no licence {number}")
    return await lifecycle.notice_expiry(session, licence, node=node)


async def renew(
    session: AsyncSession,
    *,
    number: str,
    caller: AccessClaims,
    settings: RegistrationSettings,
    identity: IdentityClient | None,
    exchange: ExchangeClient | None,
) -> AccreditationLicence:
    """The holder renews an active licence; its prerequisites must still hold."""
    node = settings.node.node_code
    licence = await licence_for(session, number=number, caller=caller, node=node, for_update=True)
    licence_type = licence_type_of(settings, licence.licence_type)
    business = await businesses.by_uscc(session, licence.uscc, for_update=True)
    assert business is not None
    lifecycle.require(licence, (lifecycle.ACTIVE,), "renew")
    # The licence itself counts as held, so requiring one's own type is no obstacle.
    unmet = await prerequisites.unmet(
        session, business=business, licence_type=licence_type, exchange=exchange
    )
    _refuse_unmet(unmet, licence_type)
    return await lifecycle.renew(
        session,
        licence=licence,
        business=business,
        licence_type=licence_type,
        identity=identity,
        node=node,
        actor=caller.sub,
    )
