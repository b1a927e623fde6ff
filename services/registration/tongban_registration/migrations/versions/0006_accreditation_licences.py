"""accreditation licences (证照分离): applications, licences, their append-only history

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "licence_applications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("business_id", sa.Uuid(), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("licence_type", sa.String(40), nullable=False),
        sa.Column("applicant", sa.String(128), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(128), nullable=True),
        sa.Column("licence_number", sa.String(40), nullable=True),
        sa.Column("created_at", _TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("decided_at", _TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_licence_applications_business_id_businesses"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licence_applications")),
    )
    op.create_index(
        op.f("ix_licence_applications_business_id"), "licence_applications", ["business_id"]
    )
    op.create_index(
        op.f("ix_licence_applications_applicant"), "licence_applications", ["applicant"]
    )
    op.create_index(op.f("ix_licence_applications_status"), "licence_applications", ["status"])
    op.execute("CREATE SEQUENCE accreditation_licence_serial")
    op.create_table(
        "accreditation_licences",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(40), nullable=False),
        sa.Column("business_id", sa.Uuid(), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("licence_type", sa.String(40), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("document", postgresql.JSONB(), nullable=False),
        sa.Column("document_sha256", sa.String(64), nullable=False),
        sa.Column("jws", sa.Text(), nullable=False),
        sa.Column("issued_at", _TZ, nullable=False),
        sa.Column("status_changed_at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_accreditation_licences_business_id_businesses"),
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["licence_applications.id"],
            name=op.f("fk_accreditation_licences_application_id_licence_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accreditation_licences")),
        sa.UniqueConstraint("number", name=op.f("uq_accreditation_licences_number")),
    )
    op.create_index(
        op.f("ix_accreditation_licences_business_id"), "accreditation_licences", ["business_id"]
    )
    op.create_index(op.f("ix_accreditation_licences_uscc"), "accreditation_licences", ["uscc"])
    op.create_index(
        "uq_accreditation_licences_live",
        "accreditation_licences",
        ["business_id", "licence_type"],
        unique=True,
        postgresql_where=sa.text("status IN ('active', 'suspended')"),
    )
    op.create_table(
        "licence_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("licence_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=True),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("at", _TZ, server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["licence_id"],
            ["accreditation_licences.id"],
            name=op.f("fk_licence_history_licence_id_accreditation_licences"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licence_history")),
    )
    op.create_index(op.f("ix_licence_history_licence_id"), "licence_history", ["licence_id"])
    op.execute(
        """
        CREATE FUNCTION licence_history_append_only() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'licence_history is append-only';
        END
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        """
        CREATE TRIGGER licence_history_append_only
        BEFORE UPDATE OR DELETE ON licence_history
        FOR EACH ROW EXECUTE FUNCTION licence_history_append_only()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER licence_history_append_only ON licence_history")
    op.execute("DROP FUNCTION licence_history_append_only()")
    op.drop_table("licence_history")
    op.drop_table("accreditation_licences")
    op.execute("DROP SEQUENCE accreditation_licence_serial")
    op.drop_table("licence_applications")
