"""automated messages: per-workstream settings, the customer's language, queue position told

Revision ID: a7c1e2d3f4b5
Revises: 741fc0ee6f3e
Create Date: 2026-11-24 12:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a7c1e2d3f4b5'
down_revision = '741fc0ee6f3e'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('workstream', schema=None) as batch_op:
        batch_op.add_column(sa.Column('automated_messages', sa.Text(), nullable=True))
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('queue_position', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('queue_told_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_column('queue_told_at')
        batch_op.drop_column('queue_position')
        batch_op.drop_column('locale')
    with op.batch_alter_table('workstream', schema=None) as batch_op:
        batch_op.drop_column('automated_messages')
