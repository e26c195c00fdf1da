"""who let a queued conversation go, so routing does not push it back to them

Revision ID: f2b4d6e8a0c1
Revises: d5a7c9e1f3b2
Create Date: 2026-12-08 02:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f2b4d6e8a0c1'
down_revision = 'd5a7c9e1f3b2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('released_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_conversation_released_by_id_agent'), 'agent', ['released_by_id'], ['id']
        )


def downgrade():
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_conversation_released_by_id_agent'), type_='foreignkey')
        batch_op.drop_column('released_by_id')
