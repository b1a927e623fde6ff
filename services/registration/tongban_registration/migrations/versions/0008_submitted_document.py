"""the exact bytes of each submission, sealed, so its signature can be checked again later

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("applications", sa.Column("submitted_document", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("applications", "submitted_document")
