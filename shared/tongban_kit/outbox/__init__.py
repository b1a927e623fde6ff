"""Transactional outbox: events written with the state change, published by a relay."""

from tongban_kit.outbox.relay import OutboxRelay, replay_from
from tongban_kit.outbox.tables import dead_letters, inbox, kit_metadata, outbox
from tongban_kit.outbox.writer import add_event

__all__ = [
    "OutboxRelay",
    "add_event",
    "dead_letters",
    "inbox",
    "kit_metadata",
    "outbox",
    "replay_from",
]
