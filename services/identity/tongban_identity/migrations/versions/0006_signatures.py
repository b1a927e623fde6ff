"""signatures: document-signing keys and signatures, persons' keys, assurance challenges

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


def upgrade() -> None:
    op.create_table(
        "document_signing_keys",
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("alg", sa.String(10), server_default="ES256", nullable=False),
        sa.Column("public_jwk", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("private_key_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('active', 'retired')", name=op.f("ck_document_signing_keys_state")
        ),
        sa.CheckConstraint("kid LIKE 'doc-%'", name=op.f("ck_document_signing_keys_kid_prefix")),
        sa.CheckConstraint(
            "(state = 'retired') = (private_key_encrypted IS NULL)",
            name=op.f("ck_document_signing_keys_private_key_until_retired"),
        ),
        sa.CheckConstraint(
            "(state = 'retired') = (retired_at IS NOT NULL)",
            name=op.f("ck_document_signing_keys_retired_at"),
        ),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_document_signing_keys")),
    )
    op.create_index(
        "uq_document_signing_keys_active",
        "document_signing_keys",
        ["state"],
        unique=True,
        postgresql_where=sa.text("state = 'active'"),
    )
    op.create_table(
        "document_signatures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("document_sha256", sa.String(64), nullable=False),
        sa.Column("document_type", sa.String(40), nullable=False),
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("jws", sa.Text(), nullable=False),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("caller", sa.String(255), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["kid"],
            ["document_signing_keys.kid"],
            name=op.f("fk_document_signatures_kid_document_signing_keys"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_signatures")),
    )
    op.create_index(
        op.f("ix_document_signatures_document_sha256"), "document_signatures", ["document_sha256"]
    )
    op.create_table(
        "person_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("jwk", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("thumbprint", sa.String(43), nullable=False),
        sa.Column("alg", sa.String(10), nullable=False),
        sa.Column("registered_acr", sa.String(12), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["persons.id"],
            name=op.f("fk_person_keys_person_id_persons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_keys")),
        sa.UniqueConstraint("thumbprint", name=op.f("uq_person_keys_thumbprint")),
    )
    op.create_index(op.f("ix_person_keys_person_id"), "person_keys", ["person_id"])
    op.create_table(
        "assurance_challenges",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("challenge", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["persons.id"],
            name=op.f("fk_assurance_challenges_person_id_persons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assurance_challenges")),
    )
    op.create_index(
        op.f("ix_assurance_challenges_person_id"), "assurance_challenges", ["person_id"]
    )
    op.create_index(
        op.f("ix_assurance_challenges_expires_at"), "assurance_challenges", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_table("assurance_challenges")
    op.drop_table("person_keys")
    op.drop_table("document_signatures")
    op.drop_index(
        "uq_document_signing_keys_active",
        table_name="document_signing_keys",
        postgresql_where=sa.text("state = 'active'"),
    )
    op.drop_table("document_signing_keys")
