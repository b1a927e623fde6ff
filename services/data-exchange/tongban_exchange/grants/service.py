"""The rules of grants: default deny, the sharing class decides, the owner approves."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_exchange.catalogue import service as catalogue
from tongban_exchange.catalogue.fields import top_level_fields
from tongban_exchange.delivery import webhooks
from tongban_exchange.grants.schemas import GrantRequest
from tongban_exchange.models import Dataset, Delivery, Grant
from tongban_kit.auth import AccessClaims
from tongban_kit.crypto import FieldCipher
from tongban_kit.errors import BadRequest, Conflict, Forbidden, NotFound


async def request(
    session: AsyncSession, *, department: str, body: GrantRequest, cipher: FieldCipher
) -> tuple[Grant, str | None]:
    """A department asks for a dataset; returns the grant and a new webhook secret, if one
    was made. ``unconditional`` is granted at once, ``conditional`` waits for the owner,
    ``none`` is refused."""
    dataset = await catalogue.get(session, body.dataset)
    if dataset.sharing == "none" and dataset.owner != department:
        raise Forbidden(f"dataset {dataset.name} is not shared")
    unknown = sorted(set(body.fields) - set(top_level_fields(dataset.schema)))
    if unknown:
        raise BadRequest(f"fields: {', '.join(unknown)} not in {dataset.name}")
    granted = dataset.sharing == "unconditional" or dataset.owner == department
    grant = Grant(
        department=department,
        dataset=dataset.name,
        purpose=body.purpose,
        legal_basis=body.legal_basis,
        fields=sorted(set(body.fields)),
        personal_allowed=body.personal,
        mode=body.delivery.mode,
        webhook_url=str(body.delivery.url) if body.delivery.url else None,
        status="granted" if granted else "requested",
        decided_at=func.now() if granted else None,
        decided_by="catalogue: unconditional" if granted else None,
    )
    session.add(grant)
    secret = None
    if grant.mode == "webhook":
        secret = await webhooks.ensure_secret(session, department=department, cipher=cipher)
    await session.flush()
    await session.refresh(grant)
    return grant, secret


async def visible(session: AsyncSession, grant_id: uuid.UUID, caller: AccessClaims) -> Grant:
    """A grant its department, the dataset's owner or an operator may see; 404 for others."""
    grant = await session.get(Grant, grant_id)
    if grant is None:
        raise NotFound(f"no grant {grant_id}")
    if caller.principal == "operator" or caller.department == grant.department:
        return grant
    dataset = await catalogue.get(session, grant.dataset)
    if caller.department == dataset.owner:
        return grant
    raise NotFound(f"no grant {grant_id}")


async def own(session: AsyncSession, caller: AccessClaims) -> list[Grant]:
    """The caller's grants (an operator's: all)."""
    query = select(Grant).order_by(Grant.requested_at)
    if caller.principal != "operator":
        query = query.where(Grant.department == caller.department)
    return list(await session.scalars(query))


async def awaiting(session: AsyncSession, caller: AccessClaims) -> list[Grant]:
    """Requests for the caller's datasets that wait for a decision (an operator's: all)."""
    query = select(Grant).where(Grant.status == "requested").order_by(Grant.requested_at)
    if caller.principal != "operator":
        owned = select(Dataset.name).where(Dataset.owner == caller.department)
        query = query.where(Grant.dataset.in_(owned))
    return list(await session.scalars(query))


async def decide(
    session: AsyncSession, *, grant_id: uuid.UUID, caller: AccessClaims, approve: bool, note: str
) -> Grant:
    """The owner department (or an operator) approves or denies a request."""
    grant = await visible(session, grant_id, caller)
    dataset = await catalogue.get(session, grant.dataset)
    if caller.principal != "operator" and caller.department != dataset.owner:
        raise Forbidden("only the dataset's owner or an operator decides on a request")
    if grant.status != "requested":
        raise Conflict(f"grant {grant_id} is {grant.status}, not awaiting a decision")
    grant.status = "granted" if approve else "denied"
    grant.decided_at = func.now()
    grant.decided_by = caller.department or f"operator:{caller.sub}"
    grant.decision_note = note or None
    await session.flush()
    await session.refresh(grant)
    return grant


async def revoke(session: AsyncSession, *, grant_id: uuid.UUID, caller: AccessClaims) -> Grant:
    """Stop a grant: nothing more is routed, and what waits for delivery is cancelled."""
    grant = await visible(session, grant_id, caller)
    if grant.status == "revoked":
        return grant
    grant.status = "revoked"
    grant.decided_at = func.now()
    grant.decided_by = caller.department or f"operator:{caller.sub}"
    await session.execute(
        update(Delivery)
        .where(Delivery.grant_id == grant.id, Delivery.status == "pending")
        .values(status="cancelled")
    )
    await session.flush()
    await session.refresh(grant)
    return grant
