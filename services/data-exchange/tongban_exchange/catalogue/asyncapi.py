"""The AsyncAPI 3 document, generated from the catalogue: what flows on which topic."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tongban_exchange.models import Dataset
from tongban_kit.events.envelope import topic_for
from tongban_kit.settings import NodeSettings

#: The per-department delivery topic (logical name; the broker's name adds the namespace).
DELIVERY_TOPIC = "exchange.to.{department}"

_CE_HEADERS: dict[str, Any] = {
    "type": "object",
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type"],
    "properties": {
        "ce_specversion": {"const": "1.0"},
        "ce_id": {"type": "string", "description": "Event id, the same in every delivery mode."},
        "ce_source": {"type": "string"},
        "ce_type": {"type": "string"},
        "ce_subject": {"type": "string"},
        "ce_time": {"type": "string", "format": "date-time"},
        "traceparent": {"type": "string"},
    },
}


def delivery_topic(department: str) -> str:
    return DELIVERY_TOPIC.format(department=department)


def build(datasets: Iterable[Dataset], node: NodeSettings) -> dict[str, Any]:
    """One channel per domain topic, one message per event type, and the delivery channel."""
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for dataset in datasets:
        if dataset.kind != "event":
            continue
        logical = topic_for(dataset.name)
        channel = channels.setdefault(
            logical,
            {
                "address": node.topic(logical),
                "title": logical,
                "messages": {},
            },
        )
        channel["messages"][dataset.name] = {"$ref": f"#/components/messages/{dataset.name}"}
        messages[dataset.name] = {
            "name": dataset.name,
            "title": dataset.title,
            "summary": dataset.description,
            "contentType": "application/json",
            "headers": _CE_HEADERS,
            "payload": dataset.schema,
            "x-tongban-owner": dataset.owner,
            "x-tongban-sharing": dataset.sharing,
            "x-tongban-scope": dataset.scope,
            "x-tongban-personal": dataset.personal,
        }
    for logical, channel in channels.items():
        operations[f"publish.{logical}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{logical}"},
            "messages": [
                {"$ref": f"#/channels/{logical}/messages/{name}"} for name in channel["messages"]
            ],
        }
    delivery = "exchange.to.department"
    channels[delivery] = {
        "address": node.topic(DELIVERY_TOPIC),
        "title": "Deliveries to one department",
        "description": "Projections of the events a department holds grants for: only the "
        "granted fields, personal identifiers as the department's pairwise pseudonym unless "
        "the grant allows them. Consumed by the department with its own consumer group.",
        "parameters": {"department": {"description": "The department's code."}},
        "messages": {
            name: {"$ref": f"#/components/messages/{name}"}
            for name, message in messages.items()
            if message["x-tongban-sharing"] != "none"
        },
    }
    operations["receive.exchange.to.department"] = {
        "action": "receive",
        "channel": {"$ref": f"#/channels/{delivery}"},
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": f"Tongban node {node.node_code} events",
            "version": "1.0.0",
            "description": "Generated from the data-exchange catalogue. CloudEvents 1.0 in "
            "binary mode on the Kafka protocol binding.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
