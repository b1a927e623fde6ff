"""The catalogue's rules: seeding the node's event types, adding record datasets."""

from __future__ import annotations

import json
import logging
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_exchange.catalogue.fields import personal_paths
from tongban_exchange.catalogue.schemas import DatasetCreate
from tongban_exchange.models import Dataset
from tongban_kit.errors import BadRequest, Conflict, NotFound
from tongban_kit.events import load_catalogue

logger = logging.getLogger("tongban.exchange.catalogue")
_SEEDED = ("kind", "owner", "title", "description", "schema", "personal", "sharing", "scope")


def declared_event_types() -> dict[str, dict[str, str]]:
    """The declarative file: owner, sharing and scope of the node's event types."""
    text = resources.files("tongban_exchange.catalogue").joinpath("datasets.json").read_text()
    declared: dict[str, dict[str, str]] = json.loads(text)["event_types"]
    return declared


def event_type_rows() -> list[dict[str, Any]]:
    """One row per event type of the kit catalogue; undeclared ones are owned by their
    service and not shared, so a new event type is never shared by accident."""
    declared = declared_event_types()
    rows = []
    for info in load_catalogue().types.values():
        entry = declared.get(info.type)
        if entry is None:
            logger.warning("event type %s is not in datasets.json: not shared", info.type)
            entry = {"owner": info.type.split(".")[2], "sharing": "none", "scope": "node"}
        rows.append(
            {
                "name": info.type,
                "kind": "event",
                "owner": entry["owner"],
                "title": info.title[:200],
                "description": info.description,
                "schema": info.schema,
                "personal": personal_paths(info.schema),
                "sharing": entry["sharing"],
                "scope": entry["scope"],
            }
        )
    return rows


async def seed(session: AsyncSession) -> int:
    """Bring the event types in line with the kit catalogue and the declarative file."""
    rows = event_type_rows()
    statement = insert(Dataset).values(rows)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["name"],
            set_={column: statement.excluded[column] for column in _SEEDED},
        )
    )
    return len(rows)


def validator_for(dataset: Dataset) -> Draft202012Validator:
    """A validator of the dataset's schema (record datasets: checked when added)."""
    return Draft202012Validator(dataset.schema)


async def get(session: AsyncSession, name: str) -> Dataset:
    dataset = await session.get(Dataset, name)
    if dataset is None:
        raise NotFound(f"no dataset {name!r} in the catalogue")
    return dataset


async def all_datasets(session: AsyncSession) -> list[Dataset]:
    return list(await session.scalars(select(Dataset).order_by(Dataset.name)))


async def add_record_dataset(session: AsyncSession, body: DatasetCreate) -> Dataset:
    """An operator adds a dataset departments publish records to."""
    schema = body.schema_
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise BadRequest(f"schema: {exc.message}") from exc
    if schema.get("type") != "object":
        raise BadRequest('schema: a record is a JSON object (`"type": "object"`)')
    if await session.get(Dataset, body.name) is not None:
        raise Conflict(f"dataset {body.name!r} exists")
    dataset = Dataset(
        name=body.name,
        kind="record",
        owner=body.owner,
        title=body.title,
        description=body.description,
        schema=schema,
        personal=personal_paths(schema),
        sharing=body.sharing,
        scope=body.scope,
    )
    session.add(dataset)
    await session.flush()
    await session.refresh(dataset)
    return dataset
