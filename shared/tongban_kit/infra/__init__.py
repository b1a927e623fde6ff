"""Embedded infrastructure: PostgreSQL and a Kafka-protocol broker as child processes.

They let a node and the test suite run on a machine with nothing but Python installed.
"""

from tongban_kit.infra.broker import EmbeddedBroker
from tongban_kit.infra.ports import free_port, free_ports, wait_for_port
from tongban_kit.infra.postgres import EmbeddedPostgres

__all__ = ["EmbeddedBroker", "EmbeddedPostgres", "free_port", "free_ports", "wait_for_port"]
