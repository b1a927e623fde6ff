"""persons: sealed resident ID and phone, blind index, password hash, level of assurance

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("persons", sa.Column("resident_id_sealed", sa.LargeBinary(), nullable=True))
    op.add_column("persons", sa.Column("resident_id_index", sa.String(64), nullable=True))
    op.add_column("persons", sa.Column("resident_id_masked", sa.String(18), nullable=True))
    op.add_column("persons", sa.Column("phone_sealed", sa.LargeBinary(), nullable=True))
    op.add_column("persons", sa.Column("phone_masked", sa.String(11), nullable=True))
    op.add_column("persons", sa.Column("password_hash", sa.String(200), nullable=True))
    op.add_column(
        "persons", sa.Column("loa", sa.String(12), server_default="low", nullable=False)
    )
    op.create_unique_constraint(
        op.f("uq_persons_resident_id_index"), "persons", ["resident_id_index"]
    )


def downgrade() -> None:
    op.drop_constraint(op.f("uq_persons_resident_id_index"), "persons", type_="unique")
    for column in (
        "loa",
        "password_hash",
        "phone_masked",
        "phone_sealed",
        "resident_id_masked",
        "resident_id_index",
        "resident_id_sealed",
    ):
        op.drop_column("persons", column)
