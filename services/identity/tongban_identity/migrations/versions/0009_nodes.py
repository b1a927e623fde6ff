"""nodes: the central directory and its one-time enrolment tokens

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("code", sa.String(6), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("gateway_url", sa.String(500), nullable=False),
        sa.Column("token_issuer", sa.String(500), nullable=False),
        sa.Column("jwks", postgresql.JSONB(), nullable=False),
        sa.Column("status", sa.String(12), server_default="active", nullable=False),
        sa.Column(
            "enrolled_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("code", name="pk_nodes"),
    )
    op.create_table(
        "node_enrolment_tokens",
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("code", sa.String(6), nullable=False),
        sa.Column(
            "issued_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_sha256", name="pk_node_enrolment_tokens"),
    )


def downgrade() -> None:
    op.drop_table("node_enrolment_tokens")
    op.drop_table("nodes")
