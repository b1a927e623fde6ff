"""Test support: the pytest plugin (fixtures for PostgreSQL and a broker) and event helpers."""

from tongban_kit.testing.apps import running_app
from tongban_kit.testing.events import EventProbe, assert_valid_event, publish_events

__all__ = ["EventProbe", "assert_valid_event", "publish_events", "running_app"]
