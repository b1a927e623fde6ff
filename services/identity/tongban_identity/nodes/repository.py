"""All SQL on ``nodes`` and ``node_enrolment_tokens``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.nodes.models import Node, NodeEnrolmentToken


async def add_token(session: AsyncSession, token: NodeEnrolmentToken) -> None:
    session.add(token)
    await session.flush()


async def spend_token(
    session: AsyncSession, *, token_sha256: str, code: str, now: datetime
) -> bool:
    """Mark the token used if it is unused, unexpired and for ``code``; one statement, so two
    enrolments racing with one token cannot both spend it."""
    spent = await session.execute(
        update(NodeEnrolmentToken)
        .where(
            NodeEnrolmentToken.token_sha256 == token_sha256,
            NodeEnrolmentToken.code == code,
            NodeEnrolmentToken.used_at.is_(None),
            NodeEnrolmentToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(NodeEnrolmentToken.code)
    )
    return spent.first() is not None


async def upsert_node(session: AsyncSession, values: dict[str, Any], now: datetime) -> Node:
    statement = insert(Node).values(**values, status="active", enrolled_at=now, updated_at=now)
    statement = statement.on_conflict_do_update(
        index_elements=[Node.code],
        set_={**values, "status": "active", "updated_at": now},
    ).returning(Node)
    node: Node = (
        await session.scalars(statement, execution_options={"populate_existing": True})
    ).one()
    return node


async def set_status(session: AsyncSession, code: str, status: str, now: datetime) -> bool:
    changed = await session.execute(
        update(Node)
        .where(Node.code == code)
        .values(status=status, updated_at=now)
        .returning(Node.code)
    )
    return changed.first() is not None


async def list_nodes(session: AsyncSession) -> Sequence[Node]:
    return (await session.scalars(select(Node).order_by(Node.code))).all()
