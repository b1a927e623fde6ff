"""businesses: simplified deregistration (objection deadline, objection)

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "businesses", sa.Column("objection_deadline", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("businesses", sa.Column("objection", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("businesses", "objection")
    op.drop_column("businesses", "objection_deadline")
