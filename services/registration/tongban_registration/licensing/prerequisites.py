"""Whether a business meets a licence type's prerequisites; every unmet one at once (一次性告知)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_registration.exchange_client import ExchangeClient
from tongban_registration.licensing import repository
from tongban_registration.licensing.types import LicenceType
from tongban_registration.models import Business
from tongban_registration.review.clock import office_date

ACTIVE = "active"


async def unmet(
    session: AsyncSession,
    *,
    business: Business,
    licence_type: LicenceType,
    exchange: ExchangeClient | None,
) -> list[dict[str, str]]:
    """Each prerequisite ``business`` fails, as ``{"prerequisite", "detail"}``; empty when
    all hold. Department records are read through data-exchange; one that cannot be read
    counts as unmet, with the reason."""
    problems: list[dict[str, str]] = []
    if business.status != ACTIVE:
        problems.append(
            {"prerequisite": "active_business", "detail": f"the business is {business.status}"}
        )
    for activity in licence_type.scope_covers:
        if activity not in business.business_scope:
            problems.append(
                {
                    "prerequisite": "business_scope",
                    "detail": f"the business scope does not cover {activity}",
                }
            )
    held = await repository.held_types(session, business.id, office_date(datetime.now(UTC)))
    for required in licence_type.requires_licences:
        if required not in held:
            problems.append(
                {"prerequisite": "licence", "detail": f"no active {required} licence is held"}
            )
    for check in licence_type.department_checks:
        if exchange is None:
            detail = f"{check.description}: this node cannot read {check.dataset} yet"
        else:
            answer = await exchange.record(
                dataset=check.dataset,
                key=business.uscc,
                purpose=f"prerequisite of a {licence_type.code} licence",
            )
            if answer.data is not None and answer.data.get(check.field) == check.equals:
                continue
            detail = f"{check.description}: " + (
                answer.problem or f"{check.dataset} says {check.field} is not {check.equals!r}"
            )
        problems.append({"prerequisite": "department_record", "detail": detail})
    return problems
