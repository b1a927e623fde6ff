"""Legal persons come from registration's events, applied once each through the inbox.

A ``business.registered`` event names the business's legal representative (name and resident
ID number). Identity keeps the number sealed and records a delegation under its blind index:
whoever signs in with that number, now or after signing up later, may act for the business.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.legal_persons import repository
from tongban_identity.legal_persons.models import LEGAL_REPRESENTATIVE
from tongban_identity.persons.protection import PersonalData
from tongban_kit.events import CloudEvent
from tongban_kit.identifiers import InvalidIdentifier, mask_resident_id, validate_resident_id
from tongban_kit.inbox import EventHandler, Subscription

BUSINESS_REGISTERED = "gov.tongban.registration.business.registered.v1"
#: Sealing context of a representative's resident ID (apart from persons' own).
REPRESENTATIVE_ID = "legal_persons.representative_id"

logger = logging.getLogger("tongban.identity.legal_persons")


def business_registered_handler(personal_data: PersonalData) -> EventHandler:
    async def on_business_registered(session: AsyncSession, event: CloudEvent) -> None:
        data = event.data
        uscc = data["uscc"]
        values: dict[str, Any] = {
            "uscc": uscc,
            "name": data["name"],
            "division_code": data["division_code"],
            "registered_at": datetime.fromisoformat(data["registered_at"]),
        }
        representative = _representative(data.get("legal_representative"), event)
        person_index = None
        if representative is not None:
            name, resident_id = representative
            person_index = personal_data.resident_id_index(resident_id)
            values |= {
                "representative_name": name,
                "representative_id_sealed": personal_data.seal(
                    resident_id, context=REPRESENTATIVE_ID
                ),
                "representative_id_masked": mask_resident_id(resident_id),
            }
        await repository.upsert_legal_person(session, values)
        if person_index is None:
            return
        now = datetime.now(UTC)
        # One legal representative at a time: a newer event naming another ends the old one.
        await repository.end_delegations_except(
            session, uscc=uscc, source=LEGAL_REPRESENTATIVE, keep_index=person_index, at=now
        )
        await repository.add_delegation(
            session, uscc=uscc, person_index=person_index, source=LEGAL_REPRESENTATIVE, at=now
        )

    return on_business_registered


def _representative(value: Any, event: CloudEvent) -> tuple[str, str] | None:
    if not isinstance(value, dict):
        return None
    try:
        resident_id = validate_resident_id(str(value.get("resident_id", "")))
    except InvalidIdentifier as exc:  # its reason never quotes the number
        logger.warning(
            "event %s names a legal representative whose resident ID is not valid (%s): the "
            "business is recorded without a delegation",
            event.id,
            exc.reason,
        )
        return None
    return str(value.get("name", ""))[:100], resident_id


def subscription(personal_data: PersonalData) -> Subscription:
    return Subscription(
        name="legal-persons",
        topics=("registration.events",),
        handlers={BUSINESS_REGISTERED: business_registered_handler(personal_data)},
    )
