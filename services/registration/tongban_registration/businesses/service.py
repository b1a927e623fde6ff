"""Business registration (the walking skeleton: registered at once, with a USCC).

The registration issue replaces the instant entry with applications, review and licences.
"""

from __future__ import annotations

import unicodedata

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_kit.errors import BadRequest, Conflict, NotFound
from tongban_kit.events import CloudEvent
from tongban_kit.identifiers import (
    InvalidIdentifier,
    contains,
    generate_uscc,
    validate_division_code,
)
from tongban_kit.outbox import add_event
from tongban_registration.businesses import repository
from tongban_registration.models import Business

BUSINESS_REGISTERED = "gov.tongban.registration.business.registered.v1"


def name_key(name: str) -> str:
    """Names equal after width and case folding and with spaces removed are the same name."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(ch for ch in folded if not ch.isspace())


async def register(session: AsyncSession, *, name: str, division_code: str, node: str) -> Business:
    try:
        division_code = validate_division_code(division_code, allow_central=False)
    except InvalidIdentifier as exc:
        raise BadRequest(f"division_code: {exc}") from exc
    if not contains(node, division_code):
        raise BadRequest(f"division_code {division_code} is outside this node ({node})")
    try:
        business = await repository.add(
            session, Business(name=name, name_key=name_key(name), division_code=division_code)
        )
    except repository.NameTaken as exc:
        raise Conflict(f"the name {name!r} is already registered", conflicting_name=name) from exc
    business.uscc = generate_uscc(division_code=division_code, serial=business.serial)
    await session.flush()
    await add_event(
        session,
        CloudEvent.new(
            BUSINESS_REGISTERED,
            source=f"/nodes/{node}/registration",
            subject=business.uscc,
            data={
                "business_id": str(business.id),
                "uscc": business.uscc,
                "name": business.name,
                "division_code": business.division_code,
                "registered_at": business.created_at.isoformat(),
            },
        ),
    )
    return business


async def get(session: AsyncSession, *, uscc: str) -> tuple[Business, list[object]]:
    business = await repository.by_uscc(session, uscc.upper())
    if business is None:
        raise NotFound(f"no business with USCC {uscc}")
    return business, list(await repository.acknowledgements_of(session, business.uscc or ""))
