"""delegations: legal representatives of legal persons, and who may act for a business

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("legal_persons", sa.Column("representative_name", sa.String(100)))
    op.add_column("legal_persons", sa.Column("representative_id_sealed", sa.LargeBinary()))
    op.add_column("legal_persons", sa.Column("representative_id_masked", sa.String(18)))
    op.create_table(
        "delegations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("person_index", sa.String(64), nullable=False),
        sa.Column("source", sa.String(30), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("source IN ('legal_representative')", name=op.f("ck_delegations_source")),
        sa.ForeignKeyConstraint(
            ["uscc"],
            ["legal_persons.uscc"],
            name=op.f("fk_delegations_uscc_legal_persons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delegations")),
    )
    op.create_index("ix_delegations_person_index", "delegations", ["person_index"])
    op.create_index(
        "uq_delegations_current",
        "delegations",
        ["uscc", "person_index", "source"],
        unique=True,
        postgresql_where=sa.text("ended_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_delegations_current", table_name="delegations")
    op.drop_index("ix_delegations_person_index", table_name="delegations")
    op.drop_table("delegations")
    op.drop_column("legal_persons", "representative_id_masked")
    op.drop_column("legal_persons", "representative_id_sealed")
    op.drop_column("legal_persons", "representative_name")
