"""Departments publish records to their own datasets and query others' under a grant."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_exchange.catalogue import service as catalogue
from tongban_exchange.log import chain
from tongban_exchange.models import Dataset, Grant, Record
from tongban_exchange.routing import service as routing
from tongban_exchange.routing.projection import project
from tongban_exchange.runtime import Exchange
from tongban_kit.errors import BadRequest, Conflict, Forbidden, NotFound

_RECORD_IDS = uuid.UUID("5d8a3c52-0d5e-4d0e-9a55-7f1f8c7b6a10")


def _canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def _context(dataset: str, key: str) -> str:
    return f"records/{dataset}/{key}"


async def record_dataset(session: AsyncSession, name: str) -> Dataset:
    dataset = await catalogue.get(session, name)
    if dataset.kind != "record":
        raise Conflict(f"{name} is an event type: its records come from its events")
    return dataset


async def publish(
    session: AsyncSession,
    exchange: Exchange,
    *,
    department: str,
    dataset_name: str,
    key: str,
    version: int,
    data: dict[str, Any],
) -> tuple[Record, str]:
    """Keep the record if it is newer; return it and ``created``, ``updated`` or ``unchanged``.

    The same key and version again with the same data changes nothing (a retry); with other
    data, or an older version, it is a conflict.
    """
    dataset = await record_dataset(session, dataset_name)
    if dataset.owner != department:
        raise Forbidden(f"only {dataset.owner} publishes to {dataset.name}")
    validator = catalogue.validator_for(dataset)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    if errors:
        problems = "; ".join(f"/{'/'.join(str(p) for p in e.path)}: {e.message}" for e in errors)
        raise BadRequest(f"data: {problems}")
    digest = hashlib.sha256(_canonical(data)).hexdigest()
    current = await session.get(Record, (dataset.name, key), with_for_update=True)
    if current is not None:
        if current.version == version and current.digest == digest:
            return current, "unchanged"
        if current.version >= version:
            raise Conflict(
                f"{dataset.name}/{key} is at version {current.version}: publish a higher one"
            )
    event_id = str(uuid.uuid5(_RECORD_IDS, f"{dataset.name}/{key}/{version}"))
    sealed = exchange.seal(data, context=_context(dataset.name, key))
    outcome = "updated"
    if current is None:
        current = Record(dataset=dataset.name, key=key)
        session.add(current)
        outcome = "created"
    current.version, current.digest, current.sealed, current.event_id = (
        version,
        digest,
        sealed,
        event_id,
    )
    current.published_at = datetime.now(UTC)
    await chain.append(
        session,
        chain.Message(
            kind="publish",
            sender=department,
            recipient="exchange",
            dataset=dataset.name,
            event_id=event_id,
            payload=_canonical(data),
        ),
    )
    event = routing.envelope(
        event_id=event_id,
        type=dataset.name,
        source=f"/nodes/{exchange.settings.node.node_code}/exchange/{department}",
        subject=key,
        time=current.published_at,
        data=data,
    )
    grants = await routing.active_grants(session, [dataset.name])
    await routing.deliver(
        session,
        exchange,
        dataset=dataset,
        event=event,
        grants=grants.get(dataset.name, []),
        pseudonyms=exchange.extra["pseudonyms"],
    )
    await session.flush()
    return current, outcome


async def query(
    session: AsyncSession,
    exchange: Exchange,
    *,
    department: str,
    dataset_name: str,
    key: str,
    purpose: str,
) -> tuple[Record, dict[str, Any]]:
    """The latest record by key, as the caller's grant sees it; the query is logged."""
    dataset = await record_dataset(session, dataset_name)
    grant = await session.scalar(
        select(Grant)
        .where(
            Grant.dataset == dataset.name,
            Grant.department == department,
            Grant.status == "granted",
        )
        .order_by(Grant.decided_at.desc())
        .limit(1)
    )
    if grant is None and department != dataset.owner:
        raise Forbidden(f"{department} holds no grant for {dataset.name}")
    record = await session.get(Record, (dataset.name, key))
    if record is None:
        raise NotFound(f"no record {key!r} in {dataset.name}")
    data = exchange.unseal(record.sealed, context=_context(dataset.name, key))
    if grant is not None:
        data = await project(
            data, grant=grant, personal=dataset.personal, pseudonyms=exchange.extra["pseudonyms"]
        )
    await chain.append(
        session,
        chain.Message(
            kind="query",
            sender=dataset.owner,
            recipient=department,
            dataset=dataset.name,
            event_id=record.event_id,
            payload=_canonical({"purpose": purpose, "key": key, "answer": data}),
        ),
    )
    return record, data
