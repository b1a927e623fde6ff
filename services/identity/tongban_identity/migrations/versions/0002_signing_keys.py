"""signing keys

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('signing_keys',
    sa.Column('kid', sa.String(length=64), nullable=False),
    sa.Column('alg', sa.String(length=10), server_default='ES256', nullable=False),
    sa.Column('public_jwk', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('private_key_encrypted', sa.LargeBinary(), nullable=True),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state IN ('next', 'active', 'retired')", name=op.f('ck_signing_keys_state')),
    sa.CheckConstraint("(state = 'retired') = (private_key_encrypted IS NULL)", name=op.f('ck_signing_keys_private_key_until_retired')),
    sa.CheckConstraint("state = 'next' OR activated_at IS NOT NULL", name=op.f('ck_signing_keys_activated_at')),
    sa.CheckConstraint("(state = 'retired') = (retired_at IS NOT NULL)", name=op.f('ck_signing_keys_retired_at')),
    sa.PrimaryKeyConstraint('kid', name=op.f('pk_signing_keys'))
    )
    op.create_index('uq_signing_keys_state_live', 'signing_keys', ['state'], unique=True, postgresql_where=sa.text("state IN ('next', 'active')"))


def downgrade() -> None:
    op.drop_index('uq_signing_keys_state_live', table_name='signing_keys', postgresql_where=sa.text("state IN ('next', 'active')"))
    op.drop_table('signing_keys')
