"""Events: the CloudEvents envelope on Kafka and the catalogue of event types."""

from tongban_kit.events.catalogue import Catalogue, EventTypeInfo, InvalidEventData, load_catalogue
from tongban_kit.events.envelope import CloudEvent, InvalidEvent, KafkaRecord, topic_for

__all__ = [
    "Catalogue",
    "CloudEvent",
    "EventTypeInfo",
    "InvalidEvent",
    "InvalidEventData",
    "KafkaRecord",
    "load_catalogue",
    "topic_for",
]
