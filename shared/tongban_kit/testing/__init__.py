"""Test support: the pytest plugin (fixtures for PostgreSQL and a broker) and event helpers."""

from tongban_kit.testing.apps import running_app, serving_app
from tongban_kit.testing.events import EventProbe, assert_valid_event, publish_events
from tongban_kit.testing.waiting import eventually

__all__ = [
    "EventProbe",
    "assert_valid_event",
    "eventually",
    "publish_events",
    "running_app",
    "serving_app",
]
