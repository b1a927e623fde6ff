"""The kit's own tables, created in every service's database by its first migration.

They are Core tables on a MetaData of their own: the same definitions serve every service's
database, and no service's ORM registry has to know them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from tongban_kit.db.base import new_metadata

__all__ = ["NOTIFY_CHANNEL", "dead_letters", "inbox", "kit_metadata", "outbox"]

NOTIFY_CHANNEL = "tongban_outbox"
kit_metadata = new_metadata()

outbox = Table(
    "tongban_outbox",
    kit_metadata,
    Column("seq", BigInteger, Identity(always=True), primary_key=True),
    Column("event_id", UUID(as_uuid=False), nullable=False, unique=True),
    Column("event_type", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("key", LargeBinary, nullable=False),
    Column("headers", JSONB, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True)),
    # The relay only ever looks for unpublished rows: keep that index small.
    Index("ix_tongban_outbox_unpublished", "seq", postgresql_where=text("published_at IS NULL")),
    Index("ix_tongban_outbox_published_at", "published_at"),
)

inbox = Table(
    "tongban_inbox",
    kit_metadata,
    Column("consumer", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("consumer", "event_id"),
)

dead_letters = Table(
    "tongban_dead_letters",
    kit_metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("consumer", Text, nullable=False),
    Column("event_id", Text),
    Column("event_type", Text),
    Column("topic", Text, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("key", LargeBinary),
    Column("headers", JSONB, nullable=False),
    Column("payload", LargeBinary),
    Column("reason", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("consumer", "topic", "partition", "offset"),
)
