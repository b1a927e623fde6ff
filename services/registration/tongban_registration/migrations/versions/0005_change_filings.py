"""change filings: name, address, scope or legal representative of a registered business

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "change_filings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("business_id", sa.Uuid(), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("applicant", sa.String(128), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("changes", postgresql.JSONB(), nullable=False),
        sa.Column("name_reservation_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(128), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["business_id"], ["businesses.id"], name=op.f("fk_change_filings_business_id_businesses")
        ),
        sa.ForeignKeyConstraint(
            ["name_reservation_id"],
            ["name_reservations.id"],
            name=op.f("fk_change_filings_name_reservation_id_name_reservations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_filings")),
    )
    op.create_index(op.f("ix_change_filings_business_id"), "change_filings", ["business_id"])
    op.create_index(
        "uq_change_filings_open_business",
        "change_filings",
        ["business_id"],
        unique=True,
        postgresql_where=sa.text("status = 'submitted'"),
    )


def downgrade() -> None:
    op.drop_table("change_filings")
