from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_exchange.models import Acknowledgement
from tongban_kit.errors import BadRequest
from tongban_kit.events import CloudEvent
from tongban_kit.identifiers import InvalidIdentifier, validate_uscc
from tongban_kit.outbox import add_event

ACKNOWLEDGEMENT_RECORDED = "gov.tongban.exchange.acknowledgement.recorded.v1"


async def record(
    session: AsyncSession, *, uscc: str, department: str, reference: str, node: str
) -> Acknowledgement:
    try:
        uscc = validate_uscc(uscc)
    except InvalidIdentifier as exc:
        raise BadRequest(f"uscc: {exc}") from exc
    ack = Acknowledgement(uscc=uscc, department=department, reference=reference)
    session.add(ack)
    await session.flush()
    await session.refresh(ack)
    await add_event(
        session,
        CloudEvent.new(
            ACKNOWLEDGEMENT_RECORDED,
            source=f"/nodes/{node}/exchange",
            subject=uscc,
            data={
                "acknowledgement_id": str(ack.id),
                "uscc": uscc,
                "department": department,
                "reference": reference,
                "recorded_at": ack.recorded_at.isoformat(),
            },
        ),
    )
    return ack
