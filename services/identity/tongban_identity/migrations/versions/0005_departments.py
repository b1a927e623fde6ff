"""departments as OAuth clients, used client assertions, pairwise subjects

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
        "department_clients",
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("node", sa.String(6), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(200)), nullable=False),
        sa.Column("jwks", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "code ~ '^[a-z0-9][a-z0-9-]{1,31}$'", name=op.f("ck_department_clients_code")
        ),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_department_clients")),
    )
    op.create_index(
        "uq_department_clients_code_enabled",
        "department_clients",
        ["code"],
        unique=True,
        postgresql_where=sa.text("disabled_at IS NULL"),
    )
    op.create_table(
        "client_assertion_jtis",
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("jti", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["department_clients.client_id"],
            name=op.f("fk_client_assertion_jtis_client_id_department_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", "jti", name="pk_client_assertion_jtis"),
    )
    op.create_index(
        "ix_client_assertion_jtis_expires_at", "client_assertion_jtis", ["expires_at"]
    )
    op.create_table(
        "pairwise_subjects",
        sa.Column("department", sa.String(32), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("pseudonym", sa.String(32), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["persons.id"],
            name=op.f("fk_pairwise_subjects_person_id_persons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("department", "person_id", name="pk_pairwise_subjects"),
        sa.UniqueConstraint(
            "department", "pseudonym", name=op.f("uq_pairwise_subjects_department_pseudonym")
        ),
    )


def downgrade() -> None:
    op.drop_table("pairwise_subjects")
    op.drop_index("ix_client_assertion_jtis_expires_at", table_name="client_assertion_jtis")
    op.drop_table("client_assertion_jtis")
    op.drop_index(
        "uq_department_clients_code_enabled",
        table_name="department_clients",
        postgresql_where=sa.text("disabled_at IS NULL"),
    )
    op.drop_table("department_clients")
