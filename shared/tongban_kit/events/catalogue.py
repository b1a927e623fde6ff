"""The catalogue of event types: one JSON Schema (2020-12) per type, kept in ``catalogue/``.

The schemas are the contract between services and departments, so they live in the kit, the
common ground: producers validate against them in tests, data-exchange validates at the border,
and the AsyncAPI document is generated from them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator

from tongban_kit.events.envelope import CloudEvent, topic_for

__all__ = ["Catalogue", "EventTypeInfo", "InvalidEventData", "load_catalogue"]


class InvalidEventData(ValueError):
    """An event whose type is unknown or whose data breaks its schema."""


@dataclass(frozen=True)
class EventTypeInfo:
    type: str
    topic: str
    title: str
    description: str
    schema: dict[str, Any]
    validator: Draft202012Validator
    # The same schema compiled by jsonschema-rs: ~50x cheaper on the hot path (data-exchange
    # validates every event it routes). ``validator`` stays the reference and says what is
    # wrong: an event is refused only when it finds a problem.
    fast: Any = None


class Catalogue:
    """Event types by name, with validation."""

    def __init__(self, types: dict[str, EventTypeInfo]) -> None:
        self.types = types

    def __contains__(self, event_type: str) -> bool:
        return event_type in self.types

    def validate(self, event: CloudEvent) -> None:
        """Raise InvalidEventData listing every way ``event.data`` breaks its schema."""
        info = self.types.get(event.type)
        if info is None:
            raise InvalidEventData(f"event type {event.type!r} is not in the catalogue")
        if info.fast is not None and info.fast.is_valid(event.data):
            return
        errors = sorted(info.validator.iter_errors(event.data), key=lambda e: list(e.path))
        if errors:
            problems = "; ".join(
                f"/{'/'.join(str(p) for p in e.path)}: {e.message}" for e in errors
            )
            raise InvalidEventData(f"{event.type}: {problems}")


@cache
def load_catalogue() -> Catalogue:
    """Read every schema shipped in ``tongban_kit/events/catalogue`` (once per process)."""
    types: dict[str, EventTypeInfo] = {}
    folder = resources.files("tongban_kit.events").joinpath("catalogue")
    for entry in folder.iterdir():
        if not entry.name.endswith(".json"):
            continue
        schema = json.loads(entry.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        event_type = entry.name.removesuffix(".json")
        types[event_type] = EventTypeInfo(
            type=event_type,
            topic=topic_for(event_type),
            title=schema.get("title", event_type),
            description=schema.get("description", ""),
            schema=schema,
            validator=Draft202012Validator(schema),
            fast=jsonschema_rs.Draft202012Validator(schema, validate_formats=False),
        )
    return Catalogue(types)
