"""initial

Revision ID: 0001
Revises: 
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tongban_kit.db.migrations import create_kit_tables, drop_kit_tables


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_kit_tables()
    op.create_table('acknowledgements',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('uscc', sa.String(length=18), nullable=False),
    sa.Column('department', sa.String(length=64), nullable=False),
    sa.Column('reference', sa.String(length=128), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_acknowledgements'))
    )
    op.create_index(op.f('ix_acknowledgements_uscc'), 'acknowledgements', ['uscc'], unique=False)
    op.create_table('businesses',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('serial', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('name_key', sa.String(length=200), nullable=False),
    sa.Column('uscc', sa.String(length=18), nullable=True),
    sa.Column('division_code', sa.String(length=6), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_businesses')),
    sa.UniqueConstraint('name_key', name=op.f('uq_businesses_name_key')),
    sa.UniqueConstraint('serial', name=op.f('uq_businesses_serial')),
    sa.UniqueConstraint('uscc', name=op.f('uq_businesses_uscc'))
    )


def downgrade() -> None:
    op.drop_table('businesses')
    op.drop_index(op.f('ix_acknowledgements_uscc'), table_name='acknowledgements')
    op.drop_table('acknowledgements')
    drop_kit_tables()
