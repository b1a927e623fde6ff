"""Departments' acknowledgements arrive from data-exchange, applied once each."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_kit.events import CloudEvent
from tongban_kit.inbox import Subscription
from tongban_registration.models import Acknowledgement

ACKNOWLEDGEMENT_RECORDED = "gov.tongban.exchange.acknowledgement.recorded.v1"


async def on_acknowledgement(session: AsyncSession, event: CloudEvent) -> None:
    data = event.data
    await session.execute(
        insert(Acknowledgement)
        .values(
            id=data["acknowledgement_id"],
            uscc=data["uscc"],
            department=data["department"],
            reference=data["reference"],
            recorded_at=datetime.fromisoformat(data["recorded_at"]),
        )
        .on_conflict_do_nothing()
    )


SUBSCRIPTION = Subscription(
    name="acknowledgements",
    topics=("exchange.events",),
    handlers={ACKNOWLEDGEMENT_RECORDED: on_acknowledgement},
)
