"""applications, transitions, name reservations, the register, licences, idempotency keys

The skeleton's instant `businesses` table gives way to the register fed by approvals.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.drop_table("businesses")
    op.create_table(
        "applications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("applicant", sa.String(128), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("entity_type", sa.String(40), nullable=False),
        sa.Column("registered_capital", sa.Numeric(20, 2), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("division_code", sa.String(6), nullable=False),
        sa.Column("business_scope", sa.Text(), nullable=False),
        sa.Column("legal_representative_name", sa.String(100), nullable=False),
        sa.Column("legal_representative_id", sa.LargeBinary(), nullable=False),
        sa.Column("investors", postgresql.JSONB(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.Column("document_sha256", sa.String(64), nullable=True),
        sa.Column("submitted_at", _TZ, nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("decided_at", _TZ, nullable=True),
        sa.Column("reviewer", sa.String(128), nullable=True),
        sa.Column("problems", postgresql.JSONB(), nullable=True),
        sa.Column("uscc", sa.String(18), nullable=True),
        sa.Column("created_at", _TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", _TZ, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
    )
    op.create_index(op.f("ix_applications_applicant"), "applications", ["applicant"])
    op.create_index(op.f("ix_applications_status"), "applications", ["status"])
    op.create_table(
        "application_transitions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=True),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("actor_role", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("problems", postgresql.JSONB(), nullable=True),
        sa.Column("at", _TZ, server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_application_transitions_application_id_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_application_transitions")),
    )
    op.create_index(
        op.f("ix_application_transitions_application_id"),
        "application_transitions",
        ["application_id"],
    )
    # The history is evidence: once written, no role of the service may change or drop it.
    op.execute(
        """
        CREATE FUNCTION application_transitions_append_only() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'application_transitions is append-only';
        END
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        """
        CREATE TRIGGER application_transitions_append_only
        BEFORE UPDATE OR DELETE ON application_transitions
        FOR EACH ROW EXECUTE FUNCTION application_transitions_append_only()
        """
    )
    op.create_table(
        "name_reservations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_key", sa.String(200), nullable=False),
        sa.Column("expires_at", _TZ, nullable=True),
        sa.Column("released_at", _TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_name_reservations_application_id_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_name_reservations")),
    )
    op.create_index(
        op.f("ix_name_reservations_application_id"), "name_reservations", ["application_id"]
    )
    op.create_index(
        "uq_name_reservations_live_name_key",
        "name_reservations",
        ["name_key"],
        unique=True,
        postgresql_where=sa.text("released_at IS NULL"),
    )
    op.create_table(
        "businesses",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("entity_type", sa.String(40), nullable=False),
        sa.Column("registered_capital", sa.Numeric(20, 2), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("division_code", sa.String(6), nullable=False),
        sa.Column("business_scope", sa.Text(), nullable=False),
        sa.Column("legal_representative_name", sa.String(100), nullable=False),
        sa.Column("legal_representative_id", sa.LargeBinary(), nullable=False),
        sa.Column("investors", postgresql.JSONB(), nullable=False),
        sa.Column("registered_at", _TZ, nullable=False),
        sa.Column("status_changed_at", _TZ, nullable=True),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_businesses_application_id_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_businesses")),
        sa.UniqueConstraint("uscc", name=op.f("uq_businesses_uscc")),
        sa.UniqueConstraint("application_id", name=op.f("uq_businesses_application_id")),
    )
    op.create_index(op.f("ix_businesses_name"), "businesses", ["name"])
    op.create_table(
        "business_licences",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("business_id", sa.Uuid(), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=False),
        sa.Column("document", postgresql.JSONB(), nullable=False),
        sa.Column("document_sha256", sa.String(64), nullable=False),
        sa.Column("jws", sa.Text(), nullable=False),
        sa.Column("issued_at", _TZ, server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_business_licences_business_id_businesses"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_business_licences")),
        sa.UniqueConstraint("business_id", name=op.f("uq_business_licences_business_id")),
        sa.UniqueConstraint("uscc", name=op.f("uq_business_licences_uscc")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("caller", sa.String(128), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("operation", sa.String(100), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("body", postgresql.JSONB(), nullable=True),
        sa.Column("created_at", _TZ, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("caller", "key", name=op.f("pk_idempotency_keys")),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("business_licences")
    op.drop_table("businesses")
    op.drop_table("name_reservations")
    op.execute("DROP TRIGGER application_transitions_append_only ON application_transitions")
    op.execute("DROP FUNCTION application_transitions_append_only()")
    op.drop_table("application_transitions")
    op.drop_table("applications")
    op.create_table(
        "businesses",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("serial", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_key", sa.String(200), nullable=False),
        sa.Column("uscc", sa.String(18), nullable=True),
        sa.Column("division_code", sa.String(6), nullable=False),
        sa.Column("created_at", _TZ, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_businesses")),
        sa.UniqueConstraint("name_key", name=op.f("uq_businesses_name_key")),
        sa.UniqueConstraint("serial", name=op.f("uq_businesses_serial")),
        sa.UniqueConstraint("uscc", name=op.f("uq_businesses_uscc")),
    )
