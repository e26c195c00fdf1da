"""audit log of admin changes, and the widget's appearance per workstream

Revision ID: c4e8a2b6d1f0
Revises: b8d2f0c4e6a1
Create Date: 2026-12-01 22:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4e8a2b6d1f0'
down_revision = 'b8d2f0c4e6a1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'audit_entry',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('actor_kind', sa.String(length=16), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('actor_label', sa.String(length=254), nullable=False),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('target_kind', sa.String(length=32), nullable=False),
        sa.Column('target_id', sa.String(length=64), nullable=False),
        sa.Column('target_label', sa.String(length=254), nullable=False),
        sa.Column('changes', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entry')),
    )
    with op.batch_alter_table('workstream', schema=None) as batch_op:
        batch_op.add_column(sa.Column('appearance', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('workstream', schema=None) as batch_op:
        batch_op.drop_column('appearance')
    op.drop_table('audit_entry')
