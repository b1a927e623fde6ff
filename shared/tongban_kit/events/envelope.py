"""CloudEvents 1.0 in binary mode on the Kafka protocol binding.

Attributes travel as ``ce_*`` headers, ``datacontenttype`` as ``content-type``, the data as the
record value, and the subject as the record key, so one entity's events stay in one partition
and in order. W3C ``traceparent`` travels both as the ``ce_traceparent`` extension and as a plain
``traceparent`` header that tracing tools look for.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tongban_kit.events.compact import compact_bytes
from tongban_kit.observability.context import current_trace

__all__ = ["CloudEvent", "InvalidEvent", "KafkaRecord", "binary_headers", "topic_for"]

_TYPE = re.compile(r"^gov\.tongban\.([a-z]+)\.([a-z_]+)\.([a-z_]+)\.v(\d+)$")
_REQUIRED = ("ce_specversion", "ce_id", "ce_source", "ce_type")


class InvalidEvent(ValueError):
    """A Kafka record that is not a well-formed Tongban CloudEvent."""


def topic_for(event_type: str) -> str:
    """The logical topic of an event type, ``<service>.events``; see ``NodeSettings.topic``."""
    match = _TYPE.match(event_type)
    if not match:
        raise InvalidEvent(f"event type {event_type!r} is not gov.tongban.<svc>.<entity>.<verb>.vN")
    return f"{match[1]}.events"


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def binary_headers(event: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The Kafka binary-mode headers of an event in structured form (its attributes by their
    CloudEvents names, ``time`` as RFC 3339 text), as ``CloudEvent.kafka_headers`` makes them."""
    headers = [
        ("ce_specversion", event["specversion"]),
        ("ce_id", event["id"]),
        ("ce_source", event["source"]),
        ("ce_type", event["type"]),
        ("ce_subject", event["subject"]),
        ("ce_time", event["time"]),
        ("content-type", event.get("datacontenttype", "application/json")),
    ]
    traceparent = event.get("traceparent")
    if traceparent:
        headers += [("ce_traceparent", traceparent), ("traceparent", traceparent)]
    return [(name, value.encode()) for name, value in headers]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """One event. ``new`` fills id, time and trace context; ``from_kafka`` parses a record."""

    type: str
    source: str
    subject: str
    data: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=_utcnow)
    traceparent: str | None = None
    datacontenttype: str = "application/json"
    specversion: str = "1.0"

    @classmethod
    def new(cls, type: str, *, source: str, subject: str, data: dict[str, Any]) -> CloudEvent:
        """An event stamped with the current trace, so consumers continue the same trace."""
        trace = current_trace()
        return cls(
            type=type,
            source=source,
            subject=subject,
            data=data,
            traceparent=trace.traceparent if trace else None,
        )

    @property
    def topic(self) -> str:
        return topic_for(self.type)

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        return binary_headers(
            {
                "specversion": self.specversion,
                "id": self.id,
                "source": self.source,
                "type": self.type,
                "subject": self.subject,
                "time": self.time.isoformat(),
                "datacontenttype": self.datacontenttype,
                "traceparent": self.traceparent,
            }
        )

    def to_kafka(self) -> KafkaRecord:
        value = compact_bytes(self.data)
        return KafkaRecord(self.topic, self.subject.encode(), value, self.kafka_headers())

    @classmethod
    def from_kafka(
        cls, key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes]]
    ) -> CloudEvent:
        """Parse a record; raise InvalidEvent naming what is wrong."""
        try:
            h = {name: raw.decode() for name, raw in headers}
        except UnicodeDecodeError as exc:
            raise InvalidEvent("a header is not UTF-8") from exc
        missing = [name for name in _REQUIRED if not h.get(name)]
        if missing:
            raise InvalidEvent(f"missing CloudEvents headers: {', '.join(missing)}")
        if h["ce_specversion"] != "1.0":
            raise InvalidEvent(f"unsupported specversion {h['ce_specversion']!r}")
        content_type = h.get("content-type", "application/json")
        if not content_type.startswith("application/json"):
            raise InvalidEvent(f"unsupported content-type {content_type!r}")
        try:
            data = json.loads(value or b"null")
        except ValueError as exc:
            raise InvalidEvent("the value is not JSON") from exc
        if not isinstance(data, dict):
            raise InvalidEvent("the data is not a JSON object")
        try:
            time = datetime.fromisoformat(h["ce_time"]) if h.get("ce_time") else _utcnow()
        except ValueError as exc:
            raise InvalidEvent("ce_time is not RFC 3339") from exc
        subject = h.get("ce_subject") or (key.decode(errors="replace") if key else "")
        return cls(
            type=h["ce_type"],
            source=h["ce_source"],
            subject=subject,
            data=data,
            id=h["ce_id"],
            time=time,
            traceparent=h.get("ce_traceparent") or h.get("traceparent"),
            datacontenttype=content_type,
        )
