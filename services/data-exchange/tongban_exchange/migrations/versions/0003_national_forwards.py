"""national forwards (the outbox of the link to the central node) and the feed cursor

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "national_forwards",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("dataset", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("forwarded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_national_forwards")),
        sa.UniqueConstraint("event_id", name=op.f("uq_national_forwards_event_id")),
    )
    op.create_index(
        "ix_national_forwards_pending",
        "national_forwards",
        ["seq"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )


    op.create_table(
        "national_cursor",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("after", sa.BigInteger(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_national_cursor")),
    )


def downgrade() -> None:
    op.drop_table("national_cursor")
    op.drop_index(
        "ix_national_forwards_pending",
        table_name="national_forwards",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_table("national_forwards")
